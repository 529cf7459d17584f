//! Compose files, read as Docker Compose reads them: the Compose Specification's model
//! (`model`, every field in its long form), variable interpolation, `.env` files, file
//! discovery, several files merged, `include`, `extends`, profiles, the normalised form
//! `kiln compose config` prints, and the order services start in. Running a project is
//! the kiln binary's part (containers, networks and volumes are the runtime's).

#![warn(missing_docs)]

mod dotenv;
mod error;
mod forms;
pub mod interpolate;
pub mod kubernetes;
mod load;
mod merge;
pub mod model;
mod order;

pub use error::Error;
pub use load::{load, Options, Project};
pub use order::levels;

/// A service as YAML, in its long form: what identifies its configuration (a change
/// recreates its containers).
pub fn service_yaml(service: &model::Service) -> String {
    serde_yaml_ng::to_string(service).unwrap_or_default()
}

/// The project as `kiln compose config` prints it (YAML).
pub fn config(project: &Project) -> String {
    let mut file = project.active();
    file.name = Some(project.name.clone());
    serde_yaml_ng::to_string(&file).unwrap_or_default()
}
