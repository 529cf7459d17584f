//! Running the stages of a build at once, each as soon as the stages it needs are done
//! (two independent stages take as long as the longer one); a stage that fails or panics
//! fails the build, and no stage waits for it forever.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::plan::Edges;
use crate::Error;

/// A lock a panicking stage held is still good: what it guards is only ever replaced
/// whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds stage `i` given the results of the stages done so far.
pub type StageFn<'a, S> = dyn Fn(usize, &BTreeMap<usize, S>) -> Result<S, Error> + Sync + 'a;

/// Runs `stage(i, done)` for each stage of `order` on a thread of its own once the stages
/// `deps` gives it are in `done`; returns every stage's result, or the first error (a
/// panic becomes [`Error::StagePanicked`], naming the stage by `label`).
pub fn run_stages<S: Clone + Send>(
    order: &[usize],
    deps: &Edges,
    label: &(dyn Fn(usize) -> String + Sync),
    stage: &StageFn<S>,
) -> Result<BTreeMap<usize, S>, Error> {
    let results: Mutex<BTreeMap<usize, S>> = Mutex::new(BTreeMap::new());
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let changed = Condvar::new();
    std::thread::scope(|scope| {
        for &i in order {
            let (results, failed, changed) = (&results, &failed, &changed);
            scope.spawn(move || {
                let needs = deps.get(&i).cloned().unwrap_or_default();
                let done = {
                    let mut guard = lock(results);
                    loop {
                        if lock(failed).is_some() {
                            return;
                        }
                        if needs.iter().all(|d| guard.contains_key(d)) {
                            break guard.clone();
                        }
                        guard = changed.wait(guard).unwrap_or_else(|e| e.into_inner());
                    }
                };
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stage(i, &done)))
                        .unwrap_or_else(|panic| {
                            let what = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            Err(Error::StagePanicked {
                                stage: label(i),
                                message: what,
                            })
                        });
                match outcome {
                    Ok(state) => {
                        lock(results).insert(i, state);
                    }
                    Err(e) => {
                        lock(failed).get_or_insert(e);
                    }
                }
                // Under the lock, so no waiting stage misses the wake-up.
                let _guard = lock(results);
                changed.notify_all();
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(results.into_inner().unwrap_or_else(|e| e.into_inner())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn label(i: usize) -> String {
        format!("s{i}")
    }

    #[test]
    fn a_stage_runs_after_what_it_needs_with_their_results() {
        // 2 needs 0 and 1; each result is its index plus the results of what it needs
        // (`done` may hold more: every stage done when it started).
        let deps: Edges = BTreeMap::from([(0, vec![]), (1, vec![]), (2, vec![0, 1])]);
        let stage = |i: usize, done: &BTreeMap<usize, usize>| {
            Ok(i * 10 + deps[&i].iter().map(|d| done[d]).sum::<usize>())
        };
        let out = run_stages(&[0, 1, 2], &deps, &label, &stage).unwrap();
        assert_eq!(out, BTreeMap::from([(0, 0), (1, 10), (2, 30)]));
    }

    #[test]
    fn independent_stages_run_at_once() {
        // Each of 0 and 1 waits for the other's message: only concurrent runs finish.
        let (to_0, from_1) = mpsc::channel::<()>();
        let (to_1, from_0) = mpsc::channel::<()>();
        let ends = Mutex::new(vec![(to_1, from_1), (to_0, from_0)]);
        let deps: Edges = BTreeMap::from([(0, vec![]), (1, vec![])]);
        let out = run_stages(&[0, 1], &deps, &label, &|_, _: &BTreeMap<usize, ()>| {
            let (tx, rx) = lock(&ends).pop().expect("two stages");
            tx.send(()).unwrap();
            rx.recv_timeout(Duration::from_secs(10))
                .map_err(|_| Error::Step {
                    step: "stage 0 or 1".into(),
                    message: "the other stage did not run alongside".into(),
                })
        });
        assert!(out.is_ok(), "{out:?}");
    }

    #[test]
    fn a_panicking_stage_fails_the_build_and_what_needs_it_never_runs() {
        let deps: Edges = BTreeMap::from([(0, vec![]), (1, vec![0])]);
        let ran = Mutex::new(Vec::new());
        let out = run_stages(&[0, 1], &deps, &label, &|i, _: &BTreeMap<usize, ()>| {
            lock(&ran).push(i);
            if i == 0 {
                panic!("broken pipe");
            }
            Ok(())
        });
        match out {
            Err(Error::StagePanicked { stage, message }) => {
                assert_eq!((stage.as_str(), message.as_str()), ("s0", "broken pipe"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(*lock(&ran), [0]);
    }

    #[test]
    fn the_first_error_is_the_builds() {
        let deps: Edges = BTreeMap::from([(0, vec![]), (1, vec![0]), (2, vec![1])]);
        let out = run_stages(&[0, 1, 2], &deps, &label, &|i, _: &BTreeMap<usize, ()>| {
            if i == 1 {
                Err(Error::NoTarget {
                    name: "stage 1".into(),
                })
            } else {
                Ok(())
            }
        });
        assert!(matches!(out, Err(Error::NoTarget { name }) if name == "stage 1"));
    }
}
