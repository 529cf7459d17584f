//! Stages from FROM lines, the edges between them, and the ones a target needs.

use std::collections::BTreeMap;

use crate::ast::{Command, Dockerfile, Instruction};
use crate::Error;

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An earlier (or any) stage, by index.
    Stage(usize),
    /// An image in the store, after expansion.
    Image(String),
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    pub from: Instruction,
    pub instructions: Vec<Instruction>,
}

/// The stages of a Dockerfile and its global ARGs (those before the first FROM).
pub struct Plan {
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

impl Plan {
    pub fn new(df: &Dockerfile) -> Plan {
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for instr in &df.instructions {
            match &instr.command {
                Command::From(f) => stages.push(Stage {
                    index: stages.len(),
                    name: f.stage.clone(),
                    from: instr.clone(),
                    instructions: Vec::new(),
                }),
                _ => match stages.last_mut() {
                    Some(stage) => stage.instructions.push(instr.clone()),
                    None => global_args.push(instr.clone()),
                },
            }
        }
        Plan {
            global_args,
            stages,
        }
    }

    /// A stage by name or index, as `--target`, `FROM` and `COPY --from` name them.
    pub fn find(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.stages.len())
            })
    }

    /// The stages `target` needs, in an order where each comes after what it needs.
    /// `deps` gives a stage's direct dependencies (resolved by the caller after
    /// expansion). A cycle is an error that names the stages in it.
    pub fn order(
        &self,
        target: usize,
        deps: &BTreeMap<usize, Vec<usize>>,
    ) -> Result<Vec<usize>, Error> {
        let mut order = Vec::new();
        let mut state = vec![0u8; self.stages.len()]; // 0 new, 1 visiting, 2 done
        let mut path = Vec::new();
        self.visit(target, deps, &mut state, &mut order, &mut path)?;
        Ok(order)
    }

    fn visit(
        &self,
        i: usize,
        deps: &BTreeMap<usize, Vec<usize>>,
        state: &mut [u8],
        order: &mut Vec<usize>,
        path: &mut Vec<usize>,
    ) -> Result<(), Error> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|p| *p == i).unwrap_or(0);
                let names: Vec<String> = path[start..]
                    .iter()
                    .chain([&i])
                    .map(|s| self.label(*s))
                    .collect();
                return Err(Error::Step {
                    step: format!("stage {}", self.label(i)),
                    message: format!("circular dependency between stages: {}", names.join(" -> ")),
                });
            }
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        for d in deps.get(&i).into_iter().flatten() {
            self.visit(*d, deps, state, order, path)?;
        }
        path.pop();
        state[i] = 2;
        order.push(i);
        Ok(())
    }

    pub fn label(&self, i: usize) -> String {
        self.stages[i].name.clone().unwrap_or_else(|| i.to_string())
    }
}
