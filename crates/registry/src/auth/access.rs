//! Who may do what on which repositories: the rules of the configuration, read as the
//! union of every rule that matches.

use std::collections::BTreeSet;

use regex::Regex;

use crate::config::AccessRule;

/// What a request does to a repository, in the token spec's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Read manifests, tags and blobs.
    Pull,
    /// Upload blobs, put manifests and tags.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
}

impl Action {
    /// The action as the token spec and `[auth.access]` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    /// The actions a word of `[auth.access]` or a token scope names (`*`: all three);
    /// none for an unknown word.
    pub fn parse(s: &str) -> Vec<Action> {
        match s {
            "pull" => vec![Action::Pull],
            "push" => vec![Action::Push],
            "delete" => vec![Action::Delete],
            "*" => vec![Action::Pull, Action::Push, Action::Delete],
            _ => vec![],
        }
    }
}

/// Someone asking: nobody logged in, or a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Nobody logged in.
    Anonymous,
    /// A user, by name.
    User(String),
}

struct Rule {
    users: Vec<String>,
    repositories: Vec<Regex>,
    actions: BTreeSet<Action>,
}

pub struct Access {
    /// None: no rules, every logged-in user may do everything.
    rules: Option<Vec<Rule>>,
}

/// `*` within one path component, `**` across them; everything else literal.
fn glob(pattern: &str) -> Regex {
    let mut re = String::from("^");
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**") {
            re.push_str(".*");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('*') {
            re.push_str("[^/]*");
            rest = r;
        } else {
            let c = rest.chars().next().expect("not empty");
            re.push_str(&regex::escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    re.push('$');
    Regex::new(&re).expect("an escaped glob is a valid regex")
}

impl Access {
    pub fn new(rules: &[AccessRule]) -> Access {
        if rules.is_empty() {
            return Access { rules: None };
        }
        Access {
            rules: Some(
                rules
                    .iter()
                    .map(|r| Rule {
                        users: r.users.clone(),
                        repositories: r.repositories.iter().map(|p| glob(p)).collect(),
                        actions: r.actions.iter().flat_map(|a| Action::parse(a)).collect(),
                    })
                    .collect(),
            ),
        }
    }

    /// What `who` may do on `repository`.
    pub fn allowed(&self, who: &Who, repository: &str) -> BTreeSet<Action> {
        let Some(rules) = &self.rules else {
            return match who {
                Who::User(_) => [Action::Pull, Action::Push, Action::Delete].into(),
                Who::Anonymous => BTreeSet::new(),
            };
        };
        let mut out = BTreeSet::new();
        for rule in rules {
            let applies = rule.users.iter().any(|u| match who {
                Who::Anonymous => u == "anonymous",
                Who::User(name) => u == name || u == "*",
            });
            if applies && rule.repositories.iter().any(|r| r.is_match(repository)) {
                out.extend(rule.actions.iter().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(users: &[&str], repos: &[&str], actions: &[&str]) -> AccessRule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        AccessRule {
            users: v(users),
            repositories: v(repos),
            actions: v(actions),
        }
    }

    #[test]
    fn rules_add_up_and_globs_respect_path_components() {
        let access = Access::new(&[
            rule(&["anonymous"], &["public/*"], &["pull"]),
            rule(&["*"], &["public/*"], &["pull"]),
            rule(&["alice"], &["team/**"], &["*"]),
            rule(&["bob"], &["team/*"], &["pull", "push"]),
        ]);
        let alice = Who::User("alice".into());
        let bob = Who::User("bob".into());
        assert_eq!(
            access.allowed(&Who::Anonymous, "public/x"),
            [Action::Pull].into()
        );
        assert!(access.allowed(&Who::Anonymous, "public/x/y").is_empty());
        assert_eq!(access.allowed(&alice, "team/a/b").len(), 3);
        assert_eq!(
            access.allowed(&bob, "team/a"),
            [Action::Pull, Action::Push].into()
        );
        assert!(access.allowed(&bob, "team/a/b").is_empty());
        assert_eq!(access.allowed(&bob, "public/x"), [Action::Pull].into());
        let open = Access::new(&[]);
        assert_eq!(open.allowed(&bob, "anything").len(), 3);
        assert!(open.allowed(&Who::Anonymous, "anything").is_empty());
    }
}
