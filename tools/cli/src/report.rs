//! Rendering errors for people: the error, then each cause on its own line.
//!
//! Messages name what failed and leave the cause to `source()` (see
//! kmodfarm_model::error_text), so each cause is printed once, here. A
//! cause whose text the line above already ends with (some libraries'
//! errors repeat their source in their message) is not printed again.

use std::error::Error;
use std::io::Write;

pub fn print(err: &(dyn Error + 'static)) {
    let _ = write(&mut std::io::stderr().lock(), err);
}

fn write(out: &mut impl Write, err: &(dyn Error + 'static)) -> std::io::Result<()> {
    let mut above = err.to_string();
    writeln!(out, "error: {above}")?;
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !above.ends_with(&text) {
            writeln!(out, "  caused by: {text}")?;
        }
        above = text;
        source = cause.source();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /m")]
    struct Read {
        source: Wrapped,
    }

    /// Like errors of libraries that repeat their source in their message.
    #[derive(Debug, thiserror::Error)]
    #[error("IO error for /m: {source}")]
    struct Wrapped {
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_printed_once_even_when_a_message_repeats_it() {
        let err = Read {
            source: Wrapped {
                source: std::io::Error::other("Is a directory"),
            },
        };
        let mut out = Vec::new();
        write(&mut out, &err).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "error: cannot read /m\n  caused by: IO error for /m: Is a directory\n"
        );
    }
}
