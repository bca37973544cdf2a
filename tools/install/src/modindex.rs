//! kmod's binary index files (`modules.dep.bin`, `modules.alias.bin`), as
//! libkmod reads them and depmod writes them: a compressed trie of 7-bit
//! ASCII keys whose nodes carry (priority, value) pairs, big-endian, format
//! 2.1. The facts are from kmod's documentation of the format in
//! libkmod-index.c and from what depmod writes; [`quick`](crate::quick)
//! checks every file it writes against the host's own depmod in the tests.

use std::collections::BTreeMap;

const MAGIC: u32 = 0xB007_F457;
const VERSION: u32 = 0x0002_0001;
const FLAG_PREFIX: u32 = 0x8000_0000;
const FLAG_VALUES: u32 = 0x4000_0000;
const FLAG_CHILDREN: u32 = 0x2000_0000;

/// Where depmod puts a node relative to its children. Both are valid for
/// every libkmod (nodes are found by offset); depmod changed from the first
/// to the second in kmod 34, and the host's own layout is used so that the
/// files are the very bytes its depmod would write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Children first, then the node (kmod up to 33).
    ChildrenFirst,
    /// The node, then its children (kmod 34 and later).
    NodeFirst,
}

impl Layout {
    pub fn of_kmod(version: u32) -> Layout {
        if version >= 34 {
            Layout::NodeFirst
        } else {
            Layout::ChildrenFirst
        }
    }
}

#[derive(Debug, Default)]
struct Node {
    prefix: Vec<u8>,
    /// Kept sorted by priority; a value inserted with a priority already
    /// present goes before the values of that priority, as depmod does.
    values: Vec<(u32, String)>,
    children: BTreeMap<u8, Node>,
}

/// A trie being filled, then written once.
#[derive(Debug, Default)]
pub struct Index {
    root: Node,
}

/// A key or value that the format cannot hold (depmod refuses it too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: only 7-bit ASCII fits in a module index")]
pub struct NotAscii(pub String);

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    pub fn insert(&mut self, key: &str, value: &str, priority: u32) -> Result<(), NotAscii> {
        for text in [key, value] {
            if !text.is_ascii() {
                return Err(NotAscii(text.to_string()));
            }
        }
        let mut node = &mut self.root;
        let mut rest = key.as_bytes();
        loop {
            let common = node
                .prefix
                .iter()
                .zip(rest)
                .take_while(|(a, b)| a == b)
                .count();
            if common < node.prefix.len() {
                // Split: the node keeps the common part, a new child takes
                // the rest of its prefix, its values and its children.
                let tail = node.prefix.split_off(common);
                let child = Node {
                    prefix: tail[1..].to_vec(),
                    values: std::mem::take(&mut node.values),
                    children: std::mem::take(&mut node.children),
                };
                node.children.insert(tail[0], child);
            }
            rest = &rest[common..];
            let Some((&ch, after)) = rest.split_first() else {
                let at = node.values.partition_point(|(p, _)| *p < priority);
                node.values.insert(at, (priority, value.to_string()));
                return Ok(());
            };
            match node.children.entry(ch) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(Node {
                        prefix: after.to_vec(),
                        values: vec![(priority, value.to_string())],
                        children: BTreeMap::new(),
                    });
                    return Ok(());
                }
                std::collections::btree_map::Entry::Occupied(child) => node = child.into_mut(),
            }
            rest = after;
        }
    }

    /// The file's bytes.
    pub fn write(&self, layout: Layout) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let root = match layout {
            Layout::ChildrenFirst => write_children_first(&self.root, &mut out),
            Layout::NodeFirst => {
                let at = out.len() as u32;
                write_node_first(&self.root, &mut out, at);
                at | self.root.flags()
            }
        };
        out[8..12].copy_from_slice(&root.to_be_bytes());
        out
    }
}

impl Node {
    fn flags(&self) -> u32 {
        let mut flags = 0;
        if !self.prefix.is_empty() {
            flags |= FLAG_PREFIX;
        }
        if !self.values.is_empty() {
            flags |= FLAG_VALUES;
        }
        if !self.children.is_empty() {
            flags |= FLAG_CHILDREN;
        }
        flags
    }

    /// The node's own bytes, child offsets included.
    fn own_size(&self) -> u32 {
        let mut size = 0;
        if !self.prefix.is_empty() {
            size += self.prefix.len() + 1;
        }
        if let (Some(first), Some(last)) =
            (self.children.keys().next(), self.children.keys().last())
        {
            size += 2 + 4 * (usize::from(last - first) + 1);
        }
        if !self.values.is_empty() {
            size += 4 + self
                .values
                .iter()
                .map(|(_, v)| 4 + v.len() + 1)
                .sum::<usize>();
        }
        size as u32
    }

    fn total_size(&self) -> u32 {
        self.own_size() + self.children.values().map(Node::total_size).sum::<u32>()
    }

    fn write_own(&self, out: &mut Vec<u8>, child_offsets: &BTreeMap<u8, u32>) {
        if !self.prefix.is_empty() {
            out.extend_from_slice(&self.prefix);
            out.push(0);
        }
        if let (Some(&first), Some(&last)) =
            (self.children.keys().next(), self.children.keys().last())
        {
            out.push(first);
            out.push(last);
            for ch in first..=last {
                let offset = child_offsets.get(&ch).copied().unwrap_or(0);
                out.extend_from_slice(&offset.to_be_bytes());
            }
        }
        if !self.values.is_empty() {
            out.extend_from_slice(&(self.values.len() as u32).to_be_bytes());
            for (priority, value) in &self.values {
                out.extend_from_slice(&priority.to_be_bytes());
                out.extend_from_slice(value.as_bytes());
                out.push(0);
            }
        }
    }
}

/// Returns the node's offset with its flags.
fn write_children_first(node: &Node, out: &mut Vec<u8>) -> u32 {
    let offsets: BTreeMap<u8, u32> = node
        .children
        .iter()
        .map(|(&ch, child)| (ch, write_children_first(child, out)))
        .collect();
    let at = out.len() as u32;
    node.write_own(out, &offsets);
    at | node.flags()
}

fn write_node_first(node: &Node, out: &mut Vec<u8>, at: u32) {
    // The children follow this node, one subtree after the other.
    let mut next = at + node.own_size();
    let mut starts = Vec::with_capacity(node.children.len());
    for child in node.children.values() {
        starts.push(next);
        next += child.total_size();
    }
    let offsets = node
        .children
        .iter()
        .zip(&starts)
        .map(|((&ch, child), &start)| (ch, start | child.flags()))
        .collect();
    node.write_own(out, &offsets);
    for (child, start) in node.children.values().zip(starts) {
        write_node_first(child, out, start);
    }
}

/// A module's name from its file name, as kmod derives it: up to the first
/// '.', with '-' read as '_'.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or(file).replace('-', "_")
}

/// An alias as the index holds it: '-' read as '_' except inside a
/// bracket expression; `None` for an unmatched bracket (depmod leaves such
/// an alias out of the binary index and keeps it in modules.alias).
pub fn normalize_alias(alias: &str) -> Option<String> {
    let mut out = String::with_capacity(alias.len());
    let mut chars = alias.chars();
    while let Some(c) = chars.next() {
        match c {
            '-' => out.push('_'),
            ']' => return None,
            '[' => {
                out.push('[');
                loop {
                    match chars.next() {
                        Some(']') => {
                            out.push(']');
                            break;
                        }
                        Some(inner) => out.push(inner),
                        None => return None,
                    }
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a written index back the way libkmod does (offsets and flags),
    /// so each layout is checked by what a reader finds, not by its bytes.
    fn read_back(bytes: &[u8]) -> Vec<(String, Vec<(u32, String)>)> {
        fn u32_at(b: &[u8], at: usize) -> u32 {
            u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
        }
        fn cstr(b: &[u8], at: usize) -> (String, usize) {
            let end = at + b[at..].iter().position(|&c| c == 0).unwrap();
            (String::from_utf8(b[at..end].to_vec()).unwrap(), end + 1)
        }
        fn walk(b: &[u8], offset: u32, key: String, out: &mut Vec<(String, Vec<(u32, String)>)>) {
            let mut at = (offset & 0x0FFF_FFFF) as usize;
            let mut key = key;
            if offset & FLAG_PREFIX != 0 {
                let (prefix, next) = cstr(b, at);
                key.push_str(&prefix);
                at = next;
            }
            let mut children = Vec::new();
            if offset & FLAG_CHILDREN != 0 {
                let (first, last) = (b[at], b[at + 1]);
                at += 2;
                for ch in first..=last {
                    children.push((ch, u32_at(b, at)));
                    at += 4;
                }
            }
            if offset & FLAG_VALUES != 0 {
                let count = u32_at(b, at);
                at += 4;
                let mut values = Vec::new();
                for _ in 0..count {
                    let priority = u32_at(b, at);
                    let (value, next) = cstr(b, at + 4);
                    values.push((priority, value));
                    at = next;
                }
                out.push((key.clone(), values));
            }
            for (ch, child) in children {
                if child != 0 {
                    walk(b, child, format!("{key}{}", ch as char), out);
                }
            }
        }
        assert_eq!(u32_at(bytes, 0), MAGIC);
        assert_eq!(u32_at(bytes, 4), VERSION);
        let mut out = Vec::new();
        walk(bytes, u32_at(bytes, 8), String::new(), &mut out);
        out
    }

    fn sample() -> Index {
        let mut index = Index::new();
        for (key, value, priority) in [
            (
                "snd_hda_intel",
                "kernel/sound/snd-hda-intel.ko: kernel/sound/snd.ko",
                7,
            ),
            ("snd", "kernel/sound/snd.ko:", 3),
            ("snd_hda_codec", "kernel/sound/snd-hda-codec.ko:", 5),
            ("pci:v00008086d*", "e1000e", 2),
            ("pci:v00008086d*", "igb", 1),
            ("pci:v00008086d*", "later_same_priority", 1),
            ("", "empty key", 0),
        ] {
            index.insert(key, value, priority).unwrap();
        }
        index
    }

    #[test]
    fn both_layouts_read_back_to_the_same_keys_values_and_priority_order() {
        let expected = vec![
            ("".to_string(), vec![(0, "empty key".to_string())]),
            (
                "pci:v00008086d*".to_string(),
                vec![
                    (1, "later_same_priority".to_string()),
                    (1, "igb".to_string()),
                    (2, "e1000e".to_string()),
                ],
            ),
            (
                "snd".to_string(),
                vec![(3, "kernel/sound/snd.ko:".to_string())],
            ),
            (
                "snd_hda_codec".to_string(),
                vec![(5, "kernel/sound/snd-hda-codec.ko:".to_string())],
            ),
            (
                "snd_hda_intel".to_string(),
                vec![(
                    7,
                    "kernel/sound/snd-hda-intel.ko: kernel/sound/snd.ko".to_string(),
                )],
            ),
        ];
        let index = sample();
        for layout in [Layout::ChildrenFirst, Layout::NodeFirst] {
            let bytes = index.write(layout);
            let mut got = read_back(&bytes);
            got.sort();
            assert_eq!(got, expected, "{layout:?}");
        }
        assert_ne!(
            index.write(Layout::ChildrenFirst),
            index.write(Layout::NodeFirst)
        );
    }

    #[test]
    fn the_trie_does_not_depend_on_the_insertion_order() {
        let keys = ["abc", "abd", "ab", "b", "abcdef", "x-y"];
        let mut forward = Index::new();
        let mut backward = Index::new();
        for (i, k) in keys.iter().enumerate() {
            forward.insert(k, k, i as u32).unwrap();
        }
        for (i, k) in keys.iter().enumerate().rev() {
            backward.insert(k, k, i as u32).unwrap();
        }
        for layout in [Layout::ChildrenFirst, Layout::NodeFirst] {
            assert_eq!(forward.write(layout), backward.write(layout));
        }
    }

    #[test]
    fn names_and_aliases_are_normalized_as_kmod_does() {
        assert_eq!(
            module_name("kernel/drivers/snd-hda-intel.ko.xz"),
            "snd_hda_intel"
        );
        assert_eq!(module_name("updates/kmfdemo.ko.zst"), "kmfdemo");
        assert_eq!(
            normalize_alias("pci:v*d*sv*sd*bc0[1-3]sc*i*").unwrap(),
            "pci:v*d*sv*sd*bc0[1-3]sc*i*"
        );
        assert_eq!(
            normalize_alias("platform:my-dev").unwrap(),
            "platform:my_dev"
        );
        assert_eq!(normalize_alias("bad[1-2"), None);
        assert_eq!(normalize_alias("bad]"), None);
    }

    #[test]
    fn a_non_ascii_key_is_refused() {
        assert!(Index::new().insert("é", "x", 0).is_err());
    }
}
