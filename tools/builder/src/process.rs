//! Running a command and keeping what it said, for logs and errors.

use std::process::{Command, Stdio};

use crate::error::{BuildError, Result};

/// What a finished command printed (stdout and stderr interleaved is not
/// possible without a pty; stderr follows stdout).
#[derive(Debug, Clone)]
pub struct Finished {
    pub success: bool,
    pub status: String,
    pub output: String,
}

/// The command line as a person would type it, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Makes `cmd`'s process die with kmodfarm: the kernel sends it SIGKILL
/// when the thread that started it ends, however kmodfarm ends (SIGKILL
/// included). The setting survives the exec chains the runtimes use
/// (`unshare … sh -c '… exec bwrap'`), and bwrap's own --die-with-parent
/// passes it on to the sandbox; a container's processes are podman's, see
/// [`crate::runtime::podman`].
pub fn die_with_us(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure calls only prctl, getppid
    // and _exit, which are async-signal-safe, and touches no memory but
    // a copied integer.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // kmodfarm died before the setting was made: nobody to wait for us.
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            Ok(())
        })
    }
}

/// Runs `cmd`, capturing its output; it dies with kmodfarm (see
/// [`die_with_us`]). Fails only when it cannot start; `package` names
/// what provides the program, for that error.
pub fn run(cmd: &mut Command, package: &str) -> Result<Finished> {
    let out = die_with_us(cmd)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BuildError::Spawn {
            program: cmd.get_program().to_string_lossy().into_owned(),
            package: package.to_string(),
            source,
        })?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Finished {
        success: out.status.success(),
        status: out.status.to_string(),
        output,
    })
}

/// [`run`], and a failed exit is an error carrying the output.
pub fn run_ok(cmd: &mut Command, package: &str) -> Result<String> {
    let done = run(cmd, package)?;
    if done.success {
        Ok(done.output)
    } else {
        Err(BuildError::Command {
            command: describe(cmd),
            status: done.status,
            output: done.output,
        })
    }
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
