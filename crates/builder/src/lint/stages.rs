//! The file as lint rules see it: global ARGs, then stages, each with its FROM and its
//! instructions.

use std::collections::BTreeMap;

use crate::ast::{Command, Dockerfile, Instruction};

pub struct Stage<'a> {
    pub from: &'a Instruction,
    /// The name as written (BuildKit keys stages by the lower-cased name).
    pub name: Option<String>,
    pub instructions: Vec<&'a Instruction>,
}

pub struct File<'a> {
    pub df: &'a Dockerfile,
    /// ARGs before the first FROM: name → default.
    pub global_args: BTreeMap<String, Option<String>>,
    pub stages: Vec<Stage<'a>>,
}

impl<'a> File<'a> {
    pub fn new(df: &'a Dockerfile) -> File<'a> {
        let mut global_args = BTreeMap::new();
        let mut stages: Vec<Stage<'a>> = Vec::new();
        for instr in &df.instructions {
            match &instr.command {
                Command::From(_) => {
                    let words = super::words_as_written(instr);
                    let name = match words.iter().position(|w| w.eq_ignore_ascii_case("as")) {
                        Some(i) => words.get(i + 1).cloned(),
                        None => None,
                    };
                    stages.push(Stage {
                        from: instr,
                        name,
                        instructions: Vec::new(),
                    });
                }
                Command::Arg(decls) if stages.is_empty() => {
                    for d in decls {
                        global_args.insert(d.name.clone(), d.default.clone());
                    }
                }
                _ => {
                    if let Some(stage) = stages.last_mut() {
                        stage.instructions.push(instr);
                    }
                }
            }
        }
        File {
            df,
            global_args,
            stages,
        }
    }
}
