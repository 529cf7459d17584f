//! Variable expansion (placeholder while the lexer lands).
