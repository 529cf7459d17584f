//! The order services start in: levels of the dependency graph, each level's services
//! needing only those of the levels before (so a level starts all at once); `down`
//! walks them backwards. A cycle is an error naming it.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::model::File;

/// The services in levels: the first needs nothing, each next needs only earlier ones.
pub fn levels(file: &File) -> Result<Vec<Vec<String>>, Error> {
    let mut left: BTreeMap<&str, BTreeSet<&str>> = file
        .services
        .iter()
        .map(|(name, s)| {
            (
                name.as_str(),
                s.depends_on.keys().map(String::as_str).collect(),
            )
        })
        .collect();
    let mut levels = Vec::new();
    while !left.is_empty() {
        let ready: Vec<&str> = left
            .iter()
            .filter(|(_, needs)| needs.iter().all(|n| !left.contains_key(n)))
            .map(|(name, _)| *name)
            .collect();
        if ready.is_empty() {
            return Err(Error::Cycle {
                cycle: cycle(&left),
            });
        }
        for name in &ready {
            left.remove(name);
        }
        levels.push(ready.into_iter().map(String::from).collect());
    }
    Ok(levels)
}

/// One cycle among `left` (every one of which is in or behind a cycle), first name
/// again at its end.
fn cycle(left: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
    let mut path: Vec<&str> = Vec::new();
    let mut at = *left.keys().next().expect("a cycle has services");
    loop {
        if let Some(start) = path.iter().position(|p| *p == at) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(at.to_string());
            return cycle;
        }
        path.push(at);
        at = left[at]
            .iter()
            .find(|n| left.contains_key(*n))
            .copied()
            .expect("a service left waits for another one left");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dependency, Service};

    fn file(edges: &[(&str, &[&str])]) -> File {
        let mut file = File::default();
        for (name, needs) in edges {
            let mut s = Service::default();
            for n in *needs {
                s.depends_on.insert(n.to_string(), Dependency::default());
            }
            file.services.insert(name.to_string(), s);
        }
        file
    }

    #[test]
    fn levels_follow_dependencies_and_cycles_are_named() {
        let f = file(&[
            ("web", &["api", "cache"]),
            ("api", &["db"]),
            ("db", &[]),
            ("cache", &[]),
        ]);
        assert_eq!(
            levels(&f).unwrap(),
            [vec!["cache", "db"], vec!["api"], vec!["web"]]
        );
        let f = file(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        match levels(&f) {
            Err(Error::Cycle { cycle }) => assert_eq!(cycle, ["a", "b", "c", "a"]),
            other => panic!("{other:?}"),
        }
    }
}
