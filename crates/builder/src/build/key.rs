//! Step cache keys: a format, since keys travel between machines through `--cache-from`.
//! Each part is encoded canonically — the instruction as the JSON `kiln parse --json`
//! documents (without its place in the file, so moving a line keeps its cache), the
//! build arguments and environment as sorted JSON — never from `Debug` output, and the
//! whole is versioned: a change of encoding is a new [`SCHEMA`], and the tests below pin
//! known keys.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::cache::{self, CacheKey};
use crate::ast::Instruction;

/// The version of the encoding, the first part of every step key.
pub const SCHEMA: &str = "kiln.step-key.v2";

/// What of an (expanded) instruction a step's result depends on: its keyword, flags,
/// arguments, form and heredocs, as canonical JSON.
pub fn instruction_part(instr: &Instruction) -> String {
    let mut v = crate::json::instruction(instr);
    if let Some(map) = v.as_object_mut() {
        for place in ["line", "end_line", "span", "original"] {
            map.remove(place);
        }
        if let Some(trigger) = map.get_mut("trigger").and_then(Value::as_object_mut) {
            for place in ["line", "end_line", "span", "original"] {
                trigger.remove(place);
            }
        }
    }
    v.to_string()
}

/// The build arguments, environment, user and working directory a step sees.
pub fn environment_part(
    args: &BTreeMap<String, String>,
    env: &[(String, String)],
    user: &str,
    workdir: &str,
) -> String {
    json!({
        "args": args,
        "env": env.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>(),
        "user": user,
        "workdir": workdir,
    })
    .to_string()
}

/// A step's key: the schema, its parent's key, the instruction, the environment, and
/// the content it takes (COPY sources, RUN bind mounts), each length-prefixed.
/// `parent` is the parent's key written out (or `link` for COPY --link).
pub fn step(parent: &str, instruction: &str, environment: &str, content: &str) -> CacheKey {
    cache::key(&[SCHEMA, parent, instruction, environment, content])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> Instruction {
        crate::parse("Dockerfile", &format!("FROM scratch\n{text}\n"))
            .unwrap()
            .instructions
            .remove(1)
    }

    #[test]
    fn keys_are_pinned() {
        let instr = first("RUN --mount=type=cache,target=/c echo hi");
        let args = BTreeMap::from([("A".to_string(), "1".to_string())]);
        let env = [("PATH".to_string(), "/bin".to_string())];
        let key = step(
            "parent",
            &instruction_part(&instr),
            &environment_part(&args, &env, "app", "/src"),
            "",
        );
        // A change here breaks every cache in every registry: bump SCHEMA with it.
        assert_eq!(
            key.to_string(),
            "6b6a2a2b3f994e9fbbfdc16fca1254f502c3dc12347488f55a389cafa551e1b3"
        );
        // Written and read as those 64 hex digits (records, registry caches).
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<CacheKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<CacheKey>("\"6b6a\"").is_err());
    }

    #[test]
    fn the_place_of_an_instruction_is_not_part_of_its_key() {
        let a = first("COPY a /b");
        let b = crate::parse("Dockerfile", "FROM scratch\n\n# moved down\nCOPY a /b\n")
            .unwrap()
            .instructions
            .remove(1);
        assert_eq!(instruction_part(&a), instruction_part(&b));
        assert_ne!(instruction_part(&a), instruction_part(&first("COPY a /c")));
        assert_ne!(
            instruction_part(&a),
            instruction_part(&first("COPY --chmod=600 a /b"))
        );
    }
}
