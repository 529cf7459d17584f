//! Planning, before anything runs: the stages from FROM lines, the global scope (ARGs
//! before the first FROM and BuildKit's platform ARGs), the graph between the stages
//! (bases, COPY --from, RUN --mount from, named contexts) and the stages a target needs.
//! Pure: no store, no filesystem.

use std::collections::BTreeMap;
use std::path::Path;

use super::{step_error, NamedContext};
use crate::ast::{Command, Dockerfile, Instruction};
use crate::expand;
use crate::Error;
use kiln_image::Platform;

/// Stage index → the stages (or images) it needs.
pub type Edges<T = usize> = BTreeMap<usize, Vec<T>>;

/// How the stages of a build hang together.
#[derive(Debug, PartialEq, Eq)]
pub struct Graph {
    /// Each stage's base.
    pub bases: Vec<Base>,
    /// The stages each stage needs: its base, COPY --from, RUN --mount from.
    pub deps: Edges,
    /// The images (not stages) each stage takes files from, base included.
    pub images: Edges<String>,
    /// Each stage's platform: its `FROM --platform`, else the target's.
    pub platforms: Vec<Platform>,
}

/// `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` for the platform the build
/// runs on, and the `TARGET…` ones for the platform it builds for.
pub fn platform_args(build: &Platform, target: &Platform) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (side, p) in [("BUILD", build), ("TARGET", target)] {
        out.insert(format!("{side}PLATFORM"), p.to_string());
        out.insert(format!("{side}OS"), p.os.clone());
        out.insert(format!("{side}ARCH"), p.architecture.clone());
        out.insert(
            format!("{side}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    out
}

/// The directory a `--build-context NAME=DIR` gives `name`.
pub fn context_dir<'c>(
    contexts: &'c BTreeMap<String, NamedContext>,
    name: &str,
) -> Option<&'c Path> {
    match contexts.get(name) {
        Some(NamedContext::Dir(d)) => Some(d),
        _ => None,
    }
}

/// The stage or image `name` means: the image a `--build-context NAME=docker-image://`
/// gives it, else `name` itself.
pub fn source_name<'n>(contexts: &'n BTreeMap<String, NamedContext>, name: &'n str) -> &'n str {
    match contexts.get(name) {
        Some(NamedContext::Image(image)) => image,
        _ => name,
    }
}

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: nothing.
    Scratch,
    /// An earlier (or any) stage, by index.
    Stage(usize),
    /// An image in the store, after expansion.
    Image(String),
}

/// A stage: its FROM and the instructions up to the next, borrowed from the Dockerfile.
/// The build plans with it, and `lint` reads its stages from it.
#[derive(Debug, Clone)]
pub struct Stage<'a> {
    pub index: usize,
    /// As BuildKit keys stages: lower-cased.
    pub name: Option<String>,
    pub from: &'a Instruction,
    pub instructions: Vec<&'a Instruction>,
}

/// The stages of a Dockerfile and its global ARGs (those before the first FROM).
pub struct Plan<'a> {
    /// The ARG instructions before the first FROM.
    pub global_args: Vec<&'a Instruction>,
    /// The stages, in file order.
    pub stages: Vec<Stage<'a>>,
}

impl<'a> Plan<'a> {
    /// Splits `df` into its global ARGs and its stages.
    pub fn new(df: &'a Dockerfile) -> Plan<'a> {
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for instr in &df.instructions {
            match &instr.command {
                Command::From(f) => stages.push(Stage {
                    index: stages.len(),
                    name: f.stage.clone(),
                    from: instr,
                    instructions: Vec::new(),
                }),
                _ => match stages.last_mut() {
                    Some(stage) => stage.instructions.push(instr),
                    None => global_args.push(instr),
                },
            }
        }
        Plan {
            global_args,
            stages,
        }
    }

    /// The global scope: BuildKit's automatic platform ARGs for this host and `target` (a
    /// stage takes one by declaring `ARG TARGETARCH`), then the ARGs before the first
    /// FROM, each with its `--build-arg` value or its default.
    pub fn global_scope(
        &self,
        escape: char,
        build_args: &BTreeMap<String, String>,
        target: &Platform,
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut global = platform_args(&Platform::host(), target);
        for instr in &self.global_args {
            let expanded = expand::instruction(instr, escape, &global)?;
            if let Command::Arg(decls) = &expanded.command {
                for d in decls {
                    if let Some(v) = build_args
                        .get(&d.name)
                        .cloned()
                        .or_else(|| d.default.clone())
                    {
                        global.insert(d.name.clone(), v);
                    }
                }
            }
        }
        Ok(global)
    }

    /// The stage `--target` names, else the last.
    pub fn target(&self, name: Option<&str>) -> Result<usize, Error> {
        match name {
            Some(t) => self.find(t).ok_or_else(|| Error::NoTarget {
                name: t.to_string(),
            }),
            None => Ok(self.stages.len() - 1),
        }
    }

    /// The graph between the stages, names expanded in the `global` scope and named
    /// contexts applied.
    pub fn graph(
        &self,
        escape: char,
        global: &BTreeMap<String, String>,
        contexts: &BTreeMap<String, NamedContext>,
        target: &Platform,
    ) -> Result<Graph, Error> {
        let mut graph = Graph {
            bases: Vec::new(),
            deps: BTreeMap::new(),
            images: BTreeMap::new(),
            platforms: Vec::new(),
        };
        for stage in &self.stages {
            let from = expand::instruction(stage.from, escape, global)?;
            let Command::From(f) = &from.command else {
                unreachable!("a stage starts with FROM")
            };
            graph.platforms.push(match &f.platform {
                Some(p) => Platform::parse(p).map_err(|e| step_error(stage.from, e.to_string()))?,
                None => target.clone(),
            });
            if context_dir(contexts, &f.image).is_some() {
                return Err(step_error(
                    stage.from,
                    format!("FROM {}: a directory build context cannot be a base yet: give it as docker-image://REF", f.image),
                ));
            }
            let image = source_name(contexts, &f.image);
            let base = if image != f.image {
                Base::Image(image.to_string())
            } else if f.image == "scratch" {
                Base::Scratch
            } else {
                match self
                    .find(&f.image)
                    .filter(|j| self.stages[*j].name.is_some() && *j != stage.index)
                {
                    Some(j) => Base::Stage(j),
                    None if self
                        .stages
                        .iter()
                        .any(|s| s.name.as_deref() == Some(f.image.as_str())) =>
                    {
                        return Err(step_error(
                            stage.from,
                            format!("stage {} is built FROM itself", f.image),
                        ));
                    }
                    None => Base::Image(f.image.clone()),
                }
            };
            let mut d = Vec::new();
            let mut external = Vec::new();
            match &base {
                Base::Stage(j) => d.push(*j),
                Base::Image(name) => external.push(name.clone()),
                Base::Scratch => {}
            }
            for instr in &stage.instructions {
                let refs: Vec<String> = match &instr.command {
                    Command::Copy(c) => c.from.iter().cloned().collect(),
                    Command::Run(r) => r.mounts.iter().filter_map(|m| m.from.clone()).collect(),
                    _ => Vec::new(),
                };
                for r in refs {
                    let r = expand::word(&r, escape, global).unwrap_or(r);
                    if context_dir(contexts, &r).is_some() {
                        continue;
                    }
                    let named = source_name(contexts, &r);
                    match self.find(named).filter(|_| named == r) {
                        Some(j) => d.push(j),
                        None => external.push(named.to_string()),
                    }
                }
            }
            graph.deps.insert(stage.index, d);
            graph.images.insert(stage.index, external);
            graph.bases.push(base);
        }
        Ok(graph)
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
    pub fn order(&self, target: usize, deps: &Edges) -> Result<Vec<usize>, Error> {
        let mut order = Vec::new();
        let mut state = vec![0u8; self.stages.len()]; // 0 new, 1 visiting, 2 done
        let mut path = Vec::new();
        self.visit(target, deps, &mut state, &mut order, &mut path)?;
        Ok(order)
    }

    fn visit(
        &self,
        i: usize,
        deps: &Edges,
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

    /// Stage `i` as the user names it: its name, else its index.
    pub fn label(&self, i: usize) -> String {
        self.stages[i].name.clone().unwrap_or_else(|| i.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Dockerfile {
        crate::parse("Dockerfile", text).unwrap()
    }

    fn none() -> BTreeMap<String, NamedContext> {
        BTreeMap::new()
    }

    #[test]
    fn the_global_scope_has_the_platform_args_and_build_args_over_defaults() {
        let df = parse(
            "ARG BASE=alpine\nARG TAG=3.20\nARG FROMPLATFORM=${TARGETARCH}\nFROM $BASE:$TAG\n",
        );
        let p = Plan::new(&df);
        let args = BTreeMap::from([("TAG".to_string(), "3.21".to_string())]);
        let target = Platform::parse("linux/arm/v7").unwrap();
        let global = p.global_scope('\\', &args, &target).unwrap();
        assert_eq!(global["BASE"], "alpine");
        assert_eq!(global["TAG"], "3.21");
        assert_eq!(global["FROMPLATFORM"], "arm");
        assert_eq!(global["TARGETPLATFORM"], "linux/arm/v7");
        assert_eq!(global["TARGETVARIANT"], "v7");
        assert_eq!(global["BUILDPLATFORM"], Platform::host().to_string());
        assert_eq!(
            p.graph('\\', &global, &none(), &target).unwrap().bases,
            [Base::Image("alpine:3.21".into())]
        );
    }

    #[test]
    fn the_graph_has_bases_stage_edges_and_images() {
        let df = parse(
            "FROM golang:1.22 AS build\nRUN --mount=type=cache,target=/c --mount=from=tools,target=/t true\n\
             FROM scratch AS tools\nCOPY --from=busybox:1 /bin/sh /sh\n\
             FROM build AS test\n\
             FROM alpine:3.20\nCOPY --from=build /app /app\nCOPY --from=1 /sh /sh\n",
        );
        let p = Plan::new(&df);
        let g = p
            .graph('\\', &BTreeMap::new(), &none(), &Platform::host())
            .unwrap();
        assert_eq!(
            g.bases,
            [
                Base::Image("golang:1.22".into()),
                Base::Scratch,
                Base::Stage(0),
                Base::Image("alpine:3.20".into())
            ]
        );
        assert_eq!(g.deps[&0], [1]);
        assert_eq!(g.deps[&1], Vec::<usize>::new());
        assert_eq!(g.deps[&2], [0]);
        assert_eq!(g.deps[&3], [0, 1]);
        assert_eq!(g.images[&1], ["busybox:1"]);
        assert_eq!(p.order(3, &g.deps).unwrap(), [1, 0, 3]);
        assert_eq!(p.target(Some("TEST")).unwrap(), 2);
        assert!(p
            .target(Some("nope"))
            .unwrap_err()
            .to_string()
            .contains("\"nope\""));
        assert_eq!(p.target(None).unwrap(), 3);
    }

    #[test]
    fn named_contexts_replace_stages_and_a_directory_is_no_base() {
        let df = parse(
            "FROM base AS base\nFROM alpine:3.20\nCOPY --from=base /a /a\nCOPY --from=src /b /b\n",
        );
        let p = Plan::new(&df);
        let contexts = BTreeMap::from([
            ("base".to_string(), NamedContext::Image("debian:12".into())),
            ("src".to_string(), NamedContext::Dir("/tmp/src".into())),
        ]);
        let g = p
            .graph('\\', &BTreeMap::new(), &contexts, &Platform::host())
            .unwrap();
        assert_eq!(g.bases[0], Base::Image("debian:12".into()));
        assert_eq!(g.deps[&1], Vec::<usize>::new(), "the image, not the stage");
        assert_eq!(g.images[&1], ["alpine:3.20", "debian:12"]);
        let df = parse("FROM src\n");
        let p = Plan::new(&df);
        let err = p
            .graph('\\', &BTreeMap::new(), &contexts, &Platform::host())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a directory build context cannot be a base"),
            "{err}"
        );
    }

    #[test]
    fn cycles_and_a_stage_from_itself_are_errors() {
        let df = parse("FROM alpine:3.20 AS a\nCOPY --from=b /x /x\nFROM alpine:3.20 AS b\nCOPY --from=a /y /y\n");
        let p = Plan::new(&df);
        let g = p
            .graph('\\', &BTreeMap::new(), &none(), &Platform::host())
            .unwrap();
        let err = p.order(1, &g.deps).unwrap_err().to_string();
        assert!(
            err.contains("circular dependency between stages: b -> a -> b"),
            "{err}"
        );
        let df = parse("FROM me AS me\n");
        let err = Plan::new(&df)
            .graph('\\', &BTreeMap::new(), &none(), &Platform::host())
            .unwrap_err()
            .to_string();
        assert!(err.contains("stage me is built FROM itself"), "{err}");
    }
}
