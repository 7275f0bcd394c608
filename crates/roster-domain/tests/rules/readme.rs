//! The README's permission matrix is generated from the code's table
//! ([`roster_domain::permission_matrix_markdown`]), so the two cannot drift apart.

use roster_domain::permission_matrix_markdown;

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
const START: &str = "<!-- permission-matrix:start -->";
const END: &str = "<!-- permission-matrix:end -->";

#[test]
fn readme_permission_matrix_is_the_codes_table() {
    let start = README.find(START).expect("README has the start marker") + START.len();
    let end = README[start..].find(END).expect("README has the end marker") + start;
    let table = README[start..end].trim_matches('\n');
    assert_eq!(
        format!("{table}\n"),
        permission_matrix_markdown(),
        "regenerate the README table from `permission_matrix_markdown()`"
    );
}

#[test]
fn matrix_has_a_header_a_separator_and_one_row_per_feature() {
    let table = permission_matrix_markdown();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "| feature | Admin | Security Engineer | Developer | Guest |");
    assert_eq!(lines[1], "|---|---|---|---|---|");
    assert_eq!(lines.len(), 2 + roster_domain::Permission::ALL.len());
    assert_eq!(lines[10], "| Audit log | READ_WRITE | NONE | NONE | NONE |");
    assert_eq!(lines[11], "| Event stream (account scope) | READ | NONE | NONE | NONE |");
}
