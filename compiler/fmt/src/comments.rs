//! Where comments are in the source, and which of them have been printed.
//!
//! The tree does not hold comments; the printer walks it in source order and, at every
//! place it can put a comment (before a list element or statement, at the end of a line,
//! before an operator), takes the comments that come before that place in the source. Every
//! comment is taken exactly once and in order, so none is dropped or reordered.

use mlp_syntax::ast::Comment;

pub struct Comments<'a> {
    src: &'a str,
    list: &'a [Comment],
    next: usize,
}

/// A comment and how it sat in the source.
pub struct Taken<'a> {
    pub comment: &'a Comment,
    /// Only whitespace before it on its line (otherwise it trails some code).
    pub own_line: bool,
    /// At least one blank line right before it.
    pub blank_before: bool,
}

impl<'a> Taken<'a> {
    /// The comment as printed: trailing whitespace removed.
    pub fn text(&self) -> String {
        self.comment.text.trim_end().to_string()
    }
}

impl<'a> Comments<'a> {
    pub fn new(src: &'a str, list: &'a [Comment]) -> Self {
        Comments { src, list, next: 0 }
    }

    fn take(&mut self) -> Taken<'a> {
        let c = &self.list[self.next];
        self.next += 1;
        let start = c.span.start as usize;
        let line_start = self.src[..start].rfind('\n').map_or(0, |i| i + 1);
        Taken {
            comment: c,
            own_line: self.src[line_start..start].trim().is_empty(),
            blank_before: self.blank_before(start),
        }
    }

    /// Takes every comment that starts before `pos`.
    pub fn before(&mut self, pos: u32) -> Vec<Taken<'a>> {
        let mut out = Vec::new();
        while self.next < self.list.len() && self.list[self.next].span.start < pos {
            out.push(self.take());
        }
        out
    }

    /// Takes the comment that follows `end` on the same line, if it starts before `limit`.
    pub fn trailing(&mut self, end: u32, limit: u32) -> Option<Taken<'a>> {
        let c = self.list.get(self.next)?;
        let (s, e) = (c.span.start, end as usize);
        if s >= end && s < limit && !self.src[e..s as usize].contains('\n') {
            Some(self.take())
        } else {
            None
        }
    }

    /// Whether a comment starts before `pos`.
    pub fn any_before(&self, pos: u32) -> bool {
        self.list.get(self.next).is_some_and(|c| c.span.start < pos)
    }

    /// Whether the whitespace right before `pos` holds a blank line.
    pub fn blank_before(&self, pos: usize) -> bool {
        let before = &self.src[..pos];
        let ws = before.len() - before.trim_end().len();
        before[before.len() - ws..].matches('\n').count() >= 2
    }

    /// The first byte at or after `pos` that is neither whitespace nor part of a comment.
    pub fn skip_trivia(&self, mut pos: usize) -> usize {
        let b = self.src.as_bytes();
        while pos < b.len() {
            if b[pos].is_ascii_whitespace() {
                pos += 1;
            } else if b[pos] == b'/' && b.get(pos + 1) == Some(&b'/') {
                pos = self.src[pos..].find('\n').map_or(b.len(), |n| pos + n);
            } else {
                break;
            }
        }
        pos
    }

    /// The byte at `pos`, if any.
    pub fn byte(&self, pos: usize) -> Option<u8> {
        self.src.as_bytes().get(pos).copied()
    }

    /// The offset of the bracket that closes the one at `open`, skipping strings and
    /// comments. Only brackets of the same kind are counted (the others nest inside).
    pub fn matching(&self, open: usize) -> Option<usize> {
        let b = self.src.as_bytes();
        let (o, c) = match b.get(open)? {
            b'(' => (b'(', b')'),
            b'[' => (b'[', b']'),
            b'{' => (b'{', b'}'),
            b'<' => (b'<', b'>'),
            _ => return None,
        };
        let mut depth = 0usize;
        let mut i = open;
        while i < b.len() {
            match b[i] {
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    i = self.src[i..].find('\n').map_or(b.len(), |n| i + n);
                    continue;
                }
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                }
                x if x == o => depth += 1,
                x if x == c => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }

    /// Where the code of a node ends. Parsed spans can run on over the whitespace and
    /// comments after the node (pest skips trivia before an optional part that then fails);
    /// this backs `end` up to the last byte of code.
    pub fn code_end(&self, end: u32) -> u32 {
        let b = self.src.as_bytes();
        let mut e = (end as usize).min(b.len());
        loop {
            while e > 0 && b[e - 1].is_ascii_whitespace() {
                e -= 1;
            }
            // The comment that `e` is in or at the end of, if any.
            let k = self.list.partition_point(|c| (c.span.start as usize) < e);
            match k.checked_sub(1).map(|k| &self.list[k]) {
                Some(c) if c.span.end as usize >= e => e = c.span.start as usize,
                _ => return e as u32,
            }
        }
    }

    /// Whether every comment has been taken.
    pub fn done(&self) -> bool {
        self.next == self.list.len()
    }
}
