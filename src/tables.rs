//! The tables `roster` prints (`projections status`, `projections rebuild`): aligned columns
//! under a header on a terminal, one tab-separated line per row without a header when piped
//! (the contract's "one line per projection", which scripts split on tabs), or a JSON array
//! with `--json`.

use anyhow::Result;
use serde_json::Value;
use std::io::{IsTerminal, Write};

/// Rows under named columns, and the same rows as JSON objects.
pub struct Table {
    /// Column headers, upper case (`NAME`, `CHECKPOINT`, …).
    pub headers: &'static [&'static str],
    /// One entry per row, as many cells as `headers` (the last may be empty).
    pub rows: Vec<Vec<String>>,
    /// One JSON object per row, for `--json`.
    pub json: Vec<Value>,
}

impl Table {
    /// Prints to stdout: JSON when `json`, else aligned with a header on a terminal and
    /// tab-separated without one otherwise.
    ///
    /// Errors: stdout could not be written.
    pub fn print(&self, json: bool) -> Result<()> {
        let stdout = std::io::stdout();
        if json {
            let mut out = stdout.lock();
            serde_json::to_writer_pretty(&mut out, &self.json)?;
            writeln!(out)?;
            return Ok(());
        }
        let terminal = stdout.is_terminal();
        let out = self.render(terminal)?;
        stdout.lock().write_all(&out)?;
        Ok(())
    }

    /// The text form: with `header`, columns aligned by tabwriter under the header; without,
    /// plain tab-separated lines (trailing empty cells dropped).
    fn render(&self, header: bool) -> Result<Vec<u8>> {
        let line = |cells: &[String]| {
            let mut cells = cells.to_vec();
            while cells.last().is_some_and(String::is_empty) {
                cells.pop();
            }
            cells.join("\t") + "\n"
        };
        if !header {
            return Ok(self.rows.iter().map(|row| line(row)).collect::<String>().into_bytes());
        }
        let mut writer = tabwriter::TabWriter::new(Vec::new()).padding(2);
        writer.write_all(line(&self.headers.iter().map(|h| h.to_string()).collect::<Vec<_>>()).as_bytes())?;
        for row in &self.rows {
            writer.write_all(line(row).as_bytes())?;
        }
        Ok(writer.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            headers: &["NAME", "CHECKPOINT", "LAG", "FAILURE"],
            rows: vec![
                vec!["members".into(), "12".into(), "0".into(), String::new()],
                vec!["audit_log".into(), "7".into(), "5".into(), "failed at 8: boom".into()],
            ],
            json: Vec::new(),
        }
    }

    #[test]
    fn terminals_get_a_header_and_aligned_columns() {
        let text = String::from_utf8(table().render(true).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["NAME", "CHECKPOINT", "LAG", "FAILURE"]);
        // Every row's second column starts where the header's does.
        let column = lines[0].find("CHECKPOINT").unwrap();
        assert_eq!(&lines[1][column..column + 2], "12", "{text}");
        assert_eq!(&lines[2][column..column + 1], "7", "{text}");
    }

    #[test]
    fn pipes_get_one_tab_separated_line_per_row() {
        let text = String::from_utf8(table().render(false).unwrap()).unwrap();
        assert_eq!(text, "members\t12\t0\naudit_log\t7\t5\tfailed at 8: boom\n");
    }
}
