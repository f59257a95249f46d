//! `editshard export` (in progress).
