//! An error and its causes as one line, for where an error becomes text
//! (a build record's reason, a list of per-distro failures). Error
//! messages name what failed and leave the cause to `source()`, so the
//! `kmodfarm` binary prints each cause once; text made here must carry
//! the causes itself.

use std::error::Error;

/// `error: cause: cause's cause`.
pub fn with_causes(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /x")]
    struct Read {
        source: std::io::Error,
    }

    #[test]
    fn every_cause_is_appended_once() {
        let e = Read {
            source: std::io::Error::other("Is a directory"),
        };
        assert_eq!(with_causes(&e), "cannot read /x: Is a directory");
    }
}
