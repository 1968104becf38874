//! Elastic tab stops as kubectl's table output lays them out: Go's `text/tabwriter`
//! (liggitt's fork) with kubectl's settings — minimum width 6, padding 3, spaces —
//! and `RememberWidths`, so a column never narrows after a flush (watch output keeps
//! its alignment). Upstream twin: `cli-runtime/pkg/printers/tabwriter.go`.

/// Collects tab-separated text and writes it aligned. Text is formatted in blocks:
/// a line without a tab ends one, as in Go (such a line cannot influence later ones).
pub struct TabWriter {
    pending: String,
    max_widths: Vec<usize>,
    min_width: usize,
    padding: usize,
    remember_widths: bool,
}

impl Default for TabWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl TabWriter {
    /// kubectl's table settings: minimum width 6, padding 3, widths remembered.
    pub fn new() -> Self {
        Self::with(6, 3, true)
    }

    /// Other settings (`kubectl describe` uses minimum width 0, padding 2).
    pub fn with(min_width: usize, padding: usize, remember_widths: bool) -> Self {
        TabWriter {
            pending: String::new(),
            max_widths: Vec::new(),
            min_width,
            padding,
            remember_widths,
        }
    }

    /// Buffers `text`, returning whatever can already be laid out.
    pub fn write(&mut self, text: &str) -> String {
        self.pending.push_str(text);
        let mut out = String::new();
        // Flush through the last line that has no tab.
        let mut cut = None;
        let mut start = 0;
        for (i, ch) in self.pending.char_indices() {
            if ch == '\n' {
                if !self.pending[start..i].contains('\t') {
                    cut = Some(i + 1);
                }
                start = i + 1;
            }
        }
        if let Some(cut) = cut {
            let block: String = self.pending.drain(..cut).collect();
            out.push_str(&self.format(&block));
        }
        out
    }

    /// Forgets remembered widths (kubectl does between resource kinds).
    pub fn reset_widths(&mut self) {
        self.max_widths.clear();
    }

    /// Lays out everything still buffered.
    pub fn flush(&mut self) -> String {
        let block = std::mem::take(&mut self.pending);
        self.format(&block)
    }

    fn format(&mut self, text: &str) -> String {
        let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut out = String::with_capacity(text.len() * 2);
        let mut widths = Vec::new();
        self.format_block(&lines, 0, lines.len(), &mut widths, &mut out);
        out
    }

    // Go's `format`: columns are found left to right; a column block is a run of lines
    // that have a tab-terminated cell in that column.
    fn format_block(
        &mut self,
        lines: &[Vec<&str>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            // RememberWidths: a column is at least as wide as it ever was.
            if self.remember_widths {
                if self.max_widths.len() < widths.len() {
                    let have = self.max_widths.len();
                    self.max_widths.extend_from_slice(&widths[have..]);
                }
                if self.max_widths.len() == widths.len() {
                    self.max_widths.push(width);
                } else if self.max_widths[column] > width {
                    width = self.max_widths[column];
                } else {
                    self.max_widths[column] = width;
                }
            }
            widths.push(width);
            self.format_block(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        write_lines(lines, line0, line1, widths, out);
    }
}

fn write_lines(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                let pad = widths[j].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

/// Formats a whole text at once.
pub fn align(text: &str) -> String {
    let mut w = TabWriter::new();
    let mut out = w.write(text);
    out.push_str(&w.flush());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell_plus_three() {
        let text = "NAME\tREADY\tSTATUS\nnginx-abc\t1/1\tRunning\nx\t0/1\tPending\n";
        assert_eq!(
            align(text),
            "NAME        READY   STATUS\nnginx-abc   1/1     Running\nx           0/1     Pending\n"
        );
    }

    #[test]
    fn a_line_without_tabs_ends_a_block_but_widths_are_remembered() {
        let text = "NAME\tAGE\nlongername\t1s\n\nNAME\tTYPE\na\tb\n";
        assert_eq!(
            align(text),
            "NAME         AGE\nlongername   1s\n\nNAME         TYPE\na            b\n"
        );
    }

    #[test]
    fn empty_cells_are_padded_and_the_last_cell_is_not() {
        assert_eq!(
            align("a\t\tc\nbb\tx\ty\n"),
            "a           c\nbb    x     y\n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        assert_eq!(align("é\tx\nab\ty\n"), "é     x\nab    y\n");
    }
}
