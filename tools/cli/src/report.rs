//! Rendering errors for people: the error, then each cause on its own line.

use std::error::Error;

pub fn print(err: &(dyn Error + 'static)) {
    eprintln!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}
