//! A small Wadler/Prettier-style document and its renderer.
//!
//! The printer builds a [`Doc`] tree; [`render`] lays it out within a line width. A group is
//! printed flat when it fits on the rest of its line (measured up to the next place the line
//! could break), and broken otherwise. Groups are decided in document order, so in
//! `a.f(x).g(y)` the renderer keeps `(x)` flat when `a.f(x).g(` fits and breaks `(y)`: the
//! outermost argument list breaks first.
//!
//! Line comments are special: a trailing comment ([`Doc::Suffix`]) is held back and written at
//! the end of its line, just before the next newline; any group that contains one (or a hard
//! newline) is broken, so the comment can never swallow the code after it.

/// How a group decides between flat and broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Flat when it fits, broken otherwise.
    Auto,
    /// Flat unless it holds a comment or a hard newline (parentheses).
    Never,
    /// Always broken (bodies).
    Always,
}

#[derive(Clone, Debug)]
pub enum Doc {
    Nil,
    Text(String),
    Concat(Vec<Doc>),
    Group {
        doc: Box<Doc>,
        fit: Fit,
        /// The group holds a hard newline or a comment somewhere inside: it must break.
        hard: bool,
    },
    /// Indents the lines started inside by one level.
    Indent(Box<Doc>),
    /// A space when flat, a newline when broken.
    Line,
    /// Nothing when flat, a newline when broken.
    SoftLine,
    /// Always a newline.
    Hard,
    /// Always a newline, continuing one level deeper (a comment in the middle of an
    /// expression).
    HardCont,
    /// When broken, the next newline leaves one blank line.
    Blank,
    /// Text printed only when the enclosing group is broken (a trailing comma).
    IfBreak(&'static str),
    /// A line comment printed at the end of the current line.
    Suffix(String),
}

pub fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into())
}

pub fn concat(parts: Vec<Doc>) -> Doc {
    Doc::Concat(parts)
}

pub fn group(doc: Doc, fit: Fit) -> Doc {
    let hard = is_hard(&doc);
    Doc::Group {
        doc: Box::new(doc),
        fit,
        hard,
    }
}

pub fn indent(doc: Doc) -> Doc {
    Doc::Indent(Box::new(doc))
}

/// Whether `doc` forces every group around it to break.
fn is_hard(doc: &Doc) -> bool {
    match doc {
        Doc::Hard | Doc::HardCont | Doc::Suffix(_) => true,
        Doc::Group { hard, fit, .. } => *hard || *fit == Fit::Always,
        Doc::Concat(v) => v.iter().any(is_hard),
        Doc::Indent(d) => is_hard(d),
        _ => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

type Frame<'a> = (usize, Mode, &'a Doc);

const INDENT: usize = 2;

struct Out {
    buf: String,
    col: usize,
    suffix: Option<String>,
    blank: bool,
}

impl Out {
    fn text(&mut self, s: &str) {
        self.buf.push_str(s);
        self.col += s.chars().count();
    }

    fn trim(&mut self) {
        let kept = self.buf.trim_end_matches(' ').len();
        self.buf.truncate(kept);
    }

    /// Writes the pending trailing comment, if any, at the end of the current line.
    fn flush_suffix(&mut self, indent: usize) {
        self.trim();
        if let Some(c) = self.suffix.take() {
            if self.buf.is_empty() || self.buf.ends_with('\n') {
                self.buf.push_str(&" ".repeat(indent));
            } else {
                self.buf.push(' ');
            }
            self.buf.push_str(&c);
        }
    }

    fn newline(&mut self, indent: usize) {
        self.flush_suffix(indent);
        if self.blank && !self.buf.is_empty() {
            self.buf.push('\n');
        }
        self.blank = false;
        self.buf.push('\n');
        self.buf.push_str(&" ".repeat(indent));
        self.col = indent;
    }
}

/// Lays `doc` out within `width` columns. The result has no trailing whitespace and ends
/// with exactly one newline (or is empty).
pub fn render(doc: &Doc, width: usize) -> String {
    let mut out = Out {
        buf: String::new(),
        col: 0,
        suffix: None,
        blank: false,
    };
    let mut stack: Vec<Frame<'_>> = vec![(0, Mode::Break, doc)];
    while let Some((ind, mode, d)) = stack.pop() {
        match d {
            Doc::Nil => {}
            Doc::Text(s) => out.text(s),
            Doc::Concat(v) => stack.extend(v.iter().rev().map(|x| (ind, mode, x))),
            Doc::Indent(x) => stack.push((ind + INDENT, mode, x)),
            Doc::Group { doc, fit, hard } => {
                let m = if *hard || *fit == Fit::Always {
                    Mode::Break
                } else if mode == Mode::Flat
                    || *fit == Fit::Never
                    || fits(doc, &stack, width as isize - out.col as isize)
                {
                    Mode::Flat
                } else {
                    Mode::Break
                };
                stack.push((ind, m, doc));
            }
            Doc::Line => match mode {
                Mode::Flat => out.text(" "),
                Mode::Break => out.newline(ind),
            },
            Doc::SoftLine => {
                if mode == Mode::Break {
                    out.newline(ind)
                }
            }
            Doc::Hard => out.newline(ind),
            Doc::HardCont => out.newline(ind + INDENT),
            Doc::Blank => {
                if mode == Mode::Break {
                    out.blank = true;
                }
            }
            Doc::IfBreak(s) => {
                if mode == Mode::Break {
                    out.text(s)
                }
            }
            Doc::Suffix(c) => {
                // Two comments can never share a line: start a new one.
                if out.suffix.is_some() {
                    out.newline(ind);
                }
                out.suffix = Some(c.clone());
            }
        }
    }
    out.flush_suffix(0);
    let mut s = out.buf;
    let kept = s.trim_end().len();
    s.truncate(kept);
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Whether `doc`, printed flat, and what follows it up to the next possible line break fit
/// in `width` columns.
fn fits(doc: &Doc, rest: &[Frame<'_>], mut width: isize) -> bool {
    let mut stack: Vec<(Mode, &Doc)> = vec![(Mode::Flat, doc)];
    let mut rest_at = rest.len();
    loop {
        if width < 0 {
            return false;
        }
        let (mode, d) = match stack.pop() {
            Some(x) => x,
            None => {
                if rest_at == 0 {
                    return true;
                }
                rest_at -= 1;
                (rest[rest_at].1, rest[rest_at].2)
            }
        };
        match d {
            Doc::Nil | Doc::Suffix(_) => {}
            Doc::Text(s) => width -= s.chars().count() as isize,
            Doc::Concat(v) => stack.extend(v.iter().rev().map(|x| (mode, x))),
            Doc::Indent(x) => stack.push((mode, x)),
            Doc::Group { doc, fit, hard } => {
                // Groups after the candidate are not decided yet; any line inside one may
                // still break, so measuring stops there (parentheses never break for width).
                let m = if mode == Mode::Flat || (*fit == Fit::Never && !*hard) {
                    Mode::Flat
                } else {
                    Mode::Break
                };
                stack.push((m, doc));
            }
            Doc::Line => match mode {
                Mode::Flat => width -= 1,
                Mode::Break => return true,
            },
            Doc::SoftLine | Doc::Blank => {
                if mode == Mode::Break {
                    return true;
                }
            }
            Doc::Hard | Doc::HardCont => return true,
            Doc::IfBreak(s) => {
                if mode == Mode::Break {
                    width -= s.len() as isize
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Doc {
        let mut inner = vec![Doc::SoftLine];
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                inner.push(text(","));
                inner.push(Doc::Line);
            }
            inner.push(text(*it));
        }
        inner.push(Doc::IfBreak(","));
        group(
            concat(vec![
                text("f("),
                indent(concat(inner)),
                Doc::SoftLine,
                text(")"),
            ]),
            Fit::Auto,
        )
    }

    #[test]
    fn flat_when_it_fits() {
        assert_eq!(render(&list(&["a", "b"]), 20), "f(a, b)\n");
    }

    #[test]
    fn breaks_when_too_long() {
        assert_eq!(
            render(&list(&["aaaa", "bbbb", "cccc"]), 10),
            "f(\n  aaaa,\n  bbbb,\n  cccc,\n)\n"
        );
    }

    #[test]
    fn suffix_goes_to_end_of_line() {
        let d = concat(vec![
            text("x"),
            Doc::Suffix("// c".into()),
            text(" y"),
            Doc::Hard,
            text("z"),
        ]);
        assert_eq!(render(&d, 80), "x y // c\nz\n");
    }

    #[test]
    fn blank_lines_come_before_the_next_newline_only() {
        let d = concat(vec![
            text("a"),
            Doc::Blank,
            Doc::Hard,
            text("b"),
            Doc::Hard,
            text("c"),
        ]);
        assert_eq!(render(&d, 80), "a\n\nb\nc\n");
    }

    #[test]
    fn a_group_with_a_comment_always_breaks() {
        let d = group(
            concat(vec![
                text("f("),
                indent(concat(vec![
                    Doc::SoftLine,
                    text("a"),
                    Doc::IfBreak(","),
                    Doc::Suffix("// c".into()),
                ])),
                Doc::SoftLine,
                text(")"),
            ]),
            Fit::Auto,
        );
        assert_eq!(render(&d, 80), "f(\n  a, // c\n)\n");
    }
}
