//! Commands that reach beyond the module's build: the network, files
//! outside the build tree, another user. DKMS runs a dkms.conf's MAKE,
//! CLEAN and PRE_/POST_ scripts as root on every host that installs the
//! package, so `init --from` lists what it carries over and `lint` warns
//! on these. The rules are lists below, read as a person would read a
//! command: split at `;`, `&&`, `||`, `|`, `&`, `(…)` and backquotes, then
//! look at each simple command's program and arguments. Quotes do not hide
//! anything (`sh -c "curl …"` is seen), so the rules err towards warning.

use std::fmt;

/// Programs that reach the network whatever their arguments.
const NETWORK_PROGRAMS: &[&str] = &[
    "curl", "wget", "aria2c", "ftp", "sftp", "scp", "ssh", "nc", "ncat", "netcat", "socat",
    "telnet",
];

/// Programs that reach the network with one of these subcommands.
const NETWORK_SUBCOMMANDS: &[(&str, &[&str])] = &[
    (
        "git",
        &["clone", "fetch", "pull", "push", "submodule", "ls-remote"],
    ),
    ("pip", &["install", "download"]),
    ("pip3", &["install", "download"]),
    ("npm", &["install", "i", "ci", "update", "exec"]),
    ("npx", &[]),
    ("yarn", &["install", "add"]),
    ("pnpm", &["install", "add"]),
    ("gem", &["install"]),
    ("go", &["get", "install", "mod"]),
    ("cargo", &["install", "fetch"]),
    (
        "apt-get",
        &[
            "install",
            "update",
            "upgrade",
            "dist-upgrade",
            "download",
            "source",
        ],
    ),
    ("apt", &["install", "update", "upgrade", "full-upgrade"]),
    (
        "dnf",
        &["install", "update", "upgrade", "download", "makecache"],
    ),
    (
        "yum",
        &["install", "update", "upgrade", "downloader", "makecache"],
    ),
    (
        "zypper",
        &["install", "in", "update", "up", "refresh", "ref", "dup"],
    ),
    ("pacman", &["-S", "-Sy", "-Syu"]),
    ("apk", &["add", "update", "upgrade"]),
];

/// URL schemes whose use means a download.
const NETWORK_SCHEMES: &[&str] = &[
    "http://", "https://", "ftp://", "git://", "ssh://", "rsync://",
];

/// Programs that run what follows as another user.
const OTHER_USER: &[&str] = &["sudo", "su", "doas", "pkexec", "runuser"];

/// Programs that write to (or remove) the paths they are given.
const WRITERS: &[&str] = &[
    "cp", "mv", "rm", "ln", "install", "mkdir", "rmdir", "touch", "tee", "chmod", "chown", "chgrp",
    "truncate", "rsync", "unlink", "depmod", "modprobe", "insmod", "rmmod",
];

/// Programs that run their arguments as a command (`sh -c "…"` too,
/// since quotes are dropped): look past them.
const WRAPPERS: &[&str] = &[
    "env", "exec", "command", "nohup", "time", "nice", "xargs", "eval", "sh", "bash", "dash",
];

/// Absolute paths a build may write without reaching outside.
const HARMLESS_PATHS: &[&str] = &[
    "/dev/null",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
    "/dev/fd/",
];

/// Starts of a path outside the build tree that are not literal `/…`.
const OUTSIDE_PREFIXES: &[&str] = &[
    "~",
    "$HOME",
    "${HOME}",
    "$kernel_source_dir",
    "${kernel_source_dir}",
    "$source_tree",
    "${source_tree}",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// Downloads or connects somewhere.
    Network,
    /// Writes a file outside the module's build tree.
    OutsideTree,
    /// Runs a command as another user.
    OtherUser,
}

/// One thing a command does beyond its build, and the words that show it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Risk {
    pub reach: Reach,
    /// The words of the command that show it: `curl`, `> /etc/foo`.
    pub what: String,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reach {
            Reach::Network => write!(f, "reaches the network ({})", self.what),
            Reach::OutsideTree => write!(f, "writes outside the build tree ({})", self.what),
            Reach::OtherUser => write!(f, "runs a command as another user ({})", self.what),
        }
    }
}

impl Risk {
    /// What to do about it, for a message.
    pub fn advice(&self) -> &'static str {
        match self.reach {
            Reach::Network => "DKMS runs it as root on every host that installs the package, often with no network: ship what it fetches in the source tree",
            Reach::OutsideTree => "DKMS runs it as root on every host that installs the package: write only inside the build directory, and let the package install files",
            Reach::OtherUser => "DKMS already runs it as root on every host that installs the package: drop the wrapper",
        }
    }
}

/// One sentence for all of a command's risks, grouped by kind, with what
/// to do: "it reaches the network (curl, https://…); DKMS runs it …".
/// None when there are none.
pub fn describe(risks: &[Risk]) -> Option<String> {
    let mut kinds: Vec<Reach> = risks.iter().map(|r| r.reach).collect();
    kinds.sort();
    kinds.dedup();
    let parts: Vec<String> = kinds
        .iter()
        .map(|k| {
            let what: Vec<&str> = risks
                .iter()
                .filter(|r| r.reach == *k)
                .map(|r| r.what.as_str())
                .collect();
            let verb = Risk {
                reach: *k,
                what: what.join(", "),
            };
            verb.to_string()
        })
        .collect();
    let first = risks.iter().find(|r| Some(&r.reach) == kinds.first())?;
    Some(format!("it {}; {}", parts.join(" and "), first.advice()))
}

/// What `command` (shell text) does beyond its build, each once, in order.
pub fn risks(command: &str) -> Vec<Risk> {
    let mut out: Vec<Risk> = Vec::new();
    let mut add = |reach, what: String| {
        let risk = Risk { reach, what };
        if !out.contains(&risk) {
            out.push(risk);
        }
    };
    for simple in simple_commands(command) {
        for (at, word) in simple.iter().enumerate() {
            if NETWORK_SCHEMES.iter().any(|s| word.contains(s)) {
                add(Reach::Network, word.clone());
            }
            if let Some(target) = redirect_target(word, simple.get(at + 1)) {
                if outside(&target) {
                    add(Reach::OutsideTree, format!("> {target}"));
                }
            }
        }
        let mut words = simple
            .iter()
            .map(String::as_str)
            .filter(|w| !w.contains('>'))
            .skip_while(|w| is_assignment(w))
            .peekable();
        while let Some(word) = words.next() {
            let program = word.rsplit('/').next().unwrap_or(word);
            if OTHER_USER.contains(&program) {
                add(Reach::OtherUser, program.to_string());
                // `sudo -u x cmd`, `su -c cmd`: look at what it runs.
                while words.next_if(|w| w.starts_with('-')).is_some() {}
                continue;
            }
            if WRAPPERS.contains(&program) {
                while words
                    .next_if(|w| w.starts_with('-') || is_assignment(w))
                    .is_some()
                {}
                continue;
            }
            let args: Vec<&str> = words.by_ref().collect();
            if NETWORK_PROGRAMS.contains(&program) {
                add(Reach::Network, program.to_string());
            }
            if let Some((_, subs)) = NETWORK_SUBCOMMANDS.iter().find(|(p, _)| *p == program) {
                let sub = args
                    .iter()
                    .find(|a| !a.starts_with('-') || subs.contains(a));
                match sub {
                    _ if subs.is_empty() => add(Reach::Network, program.to_string()),
                    Some(sub) if subs.contains(sub) => {
                        add(Reach::Network, format!("{program} {sub}"))
                    }
                    _ => {}
                }
            }
            if WRITERS.contains(&program) {
                for arg in args.iter().filter(|a| !a.starts_with('-') && outside(a)) {
                    add(Reach::OutsideTree, format!("{program} … {arg}"));
                }
            }
        }
    }
    out
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// A path that is not inside the build tree: literal absolute paths (but
/// /dev/null and the like), home directories, the kernel's trees.
fn outside(path: &str) -> bool {
    if HARMLESS_PATHS.iter().any(|h| path.starts_with(h)) {
        return false;
    }
    path.starts_with('/') || OUTSIDE_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// `>file`, `>>file`, `&>file`, `2>file`, or `>` followed by `next`; not
/// `>&2` (a descriptor).
fn redirect_target(word: &str, next: Option<&String>) -> Option<String> {
    let at = word.find('>')?;
    let target = word[at..].trim_start_matches('>');
    if target.starts_with('&') {
        return None;
    }
    let target = target.trim_start_matches('|');
    if target.is_empty() {
        return next.cloned();
    }
    Some(target.to_string())
}

/// The simple commands of `text`, each as its words. Quote characters are
/// dropped, so quoted text is looked at like the rest.
fn simple_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut word = String::new();
    let flush_word = |word: &mut String, current: &mut Vec<String>| {
        let w = word.trim_end_matches('$');
        if !w.is_empty() {
            current.push(w.to_string());
        }
        word.clear();
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '\\' => {}
            ';' | '|' | '(' | ')' | '`' | '\n' | '{' | '}' => {
                flush_word(&mut word, &mut current);
                commands.push(std::mem::take(&mut current));
            }
            '&' if word.ends_with('>') || chars.peek() == Some(&'>') => word.push(c),
            '&' => {
                flush_word(&mut word, &mut current);
                commands.push(std::mem::take(&mut current));
            }
            c if c.is_whitespace() => {
                // `> /etc/x`: keep the target with its `>`.
                if word.ends_with('>') {
                    continue;
                }
                flush_word(&mut word, &mut current)
            }
            c => word.push(c),
        }
    }
    flush_word(&mut word, &mut current);
    commands.push(current);
    commands.retain(|c| !c.is_empty());
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reaches(command: &str) -> Vec<String> {
        risks(command).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_build_that_stays_home_is_clean() {
        for command in [
            "make -C ${kernel_source_dir} M=${dkms_tree}/foo/1.0/build modules",
            "make KVER=$kernelver 2>&1 >build.log",
            "./configure --kernel=/lib/modules/$kernelver/build > /dev/null",
            "cp foo.ko.tmp foo.ko && rm -f *.o",
            "git describe --tags",
        ] {
            assert_eq!(reaches(command), Vec::<String>::new(), "{command}");
        }
    }

    #[test]
    fn downloads_writes_and_sudo_are_seen() {
        assert_eq!(
            reaches("make all; curl -fsSL https://get.example/x.sh | sh"),
            [
                "reaches the network (https://get.example/x.sh)",
                "reaches the network (curl)"
            ]
        );
        assert_eq!(
            reaches("sh -c \"git clone repo && pip3 install --user x\""),
            [
                "reaches the network (git clone)",
                "reaches the network (pip3 install)"
            ]
        );
        assert_eq!(
            reaches("make && sudo install -m 644 foo.ko /lib/modules/$kernelver/extra"),
            [
                "runs a command as another user (sudo)",
                "writes outside the build tree (install … /lib/modules/$kernelver/extra)"
            ]
        );
        assert_eq!(
            reaches("echo done >> /etc/foo.conf; echo x>/root/log"),
            [
                "writes outside the build tree (> /etc/foo.conf)",
                "writes outside the build tree (> /root/log)"
            ]
        );
        assert_eq!(
            reaches("VAR=1 env -i apt-get -y install libfoo-dev"),
            ["reaches the network (apt-get install)"]
        );
    }
}
