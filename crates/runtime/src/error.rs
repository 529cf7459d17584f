//! The runtime's one error type.

use std::path::PathBuf;

/// Everything the runtime can refuse or fail at: the sandbox, containers, volumes and
/// networks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the runtime touched.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was done (`read`, `mount`, `create directory`, …).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox's process could not start.
    #[error("starting the sandbox for {program:?}: {source} (kiln runs RUN steps as root, with overlayfs and namespaces)")]
    Spawn {
        /// The program it was to run.
        program: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// A spec without `process.args`.
    #[error("the runtime spec has no process.args: name the program to run")]
    NoProgram,
    /// A spec asking for a namespace kind the runtime does not make.
    #[error("the runtime spec asks for a {namespace} namespace, which kiln's runtime does not make yet (it makes pid, mount, uts, ipc and network namespaces)")]
    Namespace {
        /// The namespace type (`cgroup`, `time`, …).
        namespace: String,
    },
    /// A capability name the runtime does not know.
    #[error("unknown capability {name:?}: write names as CAP_CHOWN, CAP_NET_RAW, ...")]
    Capability {
        /// The name, as given.
        name: String,
    },
    /// A spec the runtime cannot follow.
    #[error("the runtime spec is invalid: {reason}")]
    Spec {
        /// What is wrong with it.
        reason: String,
    },
    /// A mount of the spec that failed.
    #[error("mount at {}: {reason}", destination.display())]
    Mount {
        /// Where it was to be mounted, in the root.
        destination: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// A path with a NUL byte, which no system call takes.
    #[error("{}: a NUL byte in the path", path.display())]
    Path {
        /// The path.
        path: PathBuf,
    },
    /// A seccomp profile file (Docker's JSON) that does not read.
    #[error("reading the seccomp profile {}: {reason}", path.display())]
    SeccompProfile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// libseccomp refused the filter.
    #[error("compiling the seccomp filter with libseccomp: {reason}")]
    Seccomp {
        /// libseccomp's error.
        reason: String,
    },
    /// A cgroup that could not be made, limited, joined or removed.
    #[error("cgroup {}: {reason}", path.display())]
    Cgroup {
        /// The cgroup's directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `kiln volume` names a volume the store does not have.
    #[error("no such volume: {name}")]
    NoSuchVolume {
        /// The name, as given.
        name: String,
    },
    /// A volume name Docker would refuse.
    #[error("volume name {name:?}: use letters, digits, _ . and -, starting with a letter or digit, two characters at least")]
    VolumeName {
        /// The name, as given.
        name: String,
    },
    /// A volume a container still uses.
    #[error(
        "remove volume {name}: it is in use by container {container}: remove the container first"
    )]
    VolumeInUse {
        /// The volume.
        name: String,
        /// The container that uses it.
        container: String,
    },
    /// A name or ID prefix that matches no container (Docker's wording).
    #[error("No such container: {name}")]
    NoSuchContainer {
        /// The name, as given.
        name: String,
    },
    /// An ID prefix that matches several containers.
    #[error("{name} names more than one container: give more of its ID")]
    AmbiguousContainer {
        /// The prefix.
        name: String,
    },
    /// A container name another container has (Docker's wording).
    #[error("the container name \"/{name}\" is already in use by container \"{id}\": remove (or rename) that container to reuse the name")]
    NameInUse {
        /// The name.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// A `kiln runtime` container ID runc would refuse.
    #[error("container ID {id:?}: use letters, digits and _ . + -")]
    BundleId {
        /// The ID, as given.
        id: String,
    },
    /// `kiln runtime create` with an ID that exists.
    #[error("container {id} exists already: delete it first (kiln runtime delete {id})")]
    BundleExists {
        /// The ID.
        id: String,
    },
    /// `kiln runtime` names a container its state root does not have.
    #[error("container {id} does not exist")]
    NoSuchBundle {
        /// The ID.
        id: String,
    },
    /// A `kiln runtime` command the container's status does not allow.
    #[error("container {id} is {status}; this needs it {wanted}")]
    BundleStatus {
        /// The container.
        id: String,
        /// Its status (`created`, `running`, `stopped`).
        status: String,
        /// The status the command needs.
        wanted: &'static str,
    },
    /// A bundle whose `config.json` does not read.
    #[error("reading the bundle's {}: {reason}", path.display())]
    BundleConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A network name or ID the store does not have (Docker's wording).
    #[error("network {name} not found: see kiln network ls")]
    NoSuchNetwork {
        /// The name, as given.
        name: String,
    },
    /// `network create` with a name in use (Docker's wording).
    #[error("network with name {name} already exists")]
    NetworkExists {
        /// The name.
        name: String,
    },
    /// `network rm` of `bridge`, `host` or `none`.
    #[error("{name} is a pre-defined network and cannot be removed")]
    PredefinedNetwork {
        /// The name.
        name: String,
    },
    /// `network rm` of a network running containers are on.
    #[error("network {name} has {containers} running container(s) on it: stop them or disconnect them first (kiln network disconnect {name} CONTAINER)")]
    NetworkInUse {
        /// The network.
        name: String,
        /// How many.
        containers: usize,
    },
    /// A network request that cannot be met (a bad `--subnet`, an option for another driver); the message says what to change.
    #[error("{reason}")]
    NetworkRequest {
        /// What is wrong, for the user.
        reason: String,
    },
    /// A subnet that overlaps another network's or a host route.
    #[error("subnet {subnet} overlaps {other}, which a kiln network or a route of the host has: choose another --subnet")]
    SubnetOverlap {
        /// The subnet asked for.
        subnet: String,
        /// The one it overlaps.
        other: String,
    },
    /// Every subnet of the default pools is taken.
    #[error("no free subnet left in the default pools (172.17-31.0.0/16, 192.168.0.0/16): remove unused networks (kiln network prune) or give --subnet")]
    NoFreeSubnet,
    /// `--ip` outside the network's subnet.
    #[error("address {address} is not in the network's subnet {subnet}")]
    AddressOutsideSubnet {
        /// The address asked for.
        address: String,
        /// The network's subnet.
        subnet: String,
    },
    /// `--ip` another container on the network has.
    #[error("address {address} is already in use on network {network}: choose another --ip")]
    AddressInUse {
        /// The address.
        address: String,
        /// The network.
        network: String,
    },
    /// Every address of the network's subnet is taken.
    #[error("no free address left on network {network}")]
    NoFreeAddress {
        /// The network.
        network: String,
    },
    /// `network connect` of a container already on the network.
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected {
        /// The container.
        container: String,
        /// The network.
        network: String,
    },
    /// A `-p` value that does not read.
    #[error("-p {spec}: {reason}")]
    PortSpec {
        /// The value, as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A host port something else holds (Docker's wording), found before the container starts.
    #[error("Bind for {address} failed: port is already allocated ({protocol}: {reason}): choose another host port")]
    PortInUse {
        /// The host address and port.
        address: String,
        /// `tcp` or `udp`.
        protocol: &'static str,
        /// The bind's error.
        reason: &'static str,
    },
    /// nft refused kiln's rules.
    #[error("nftables refused kiln's rules (is the nft command installed? kiln's networks need it): {reason}")]
    Firewall {
        /// nft's error output.
        reason: String,
    },
    /// A netlink request (links, addresses, routes) that failed.
    #[error("networking: {op}: {source}")]
    Netlink {
        /// What was asked.
        op: &'static str,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
}
