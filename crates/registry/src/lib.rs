//! kiln's OCI distribution registry (`kiln registry serve`). Empty until issue 5; it will
//! depend on `kiln-image` only, never on the builder or the runtime.
