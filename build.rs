//! Tells utoipa that each id type of `domain::ids` is documented as a UUID, once, instead
//! of a `#[schema(value_type = Uuid)]` on every field and parameter of an id type (utoipa's
//! derive otherwise makes every named type a `$ref`). utoipa's `config` feature reads this
//! file from `OUT_DIR` while it expands the derives.
//!
//! The names are read from the `entity_id! { ... }` block of `src/domain/ids.rs`, where the
//! types are declared, so a new id type is declared in one place.

const IDS: &str = "src/domain/ids.rs";

/// The `Name;` lines of the `entity_id! { ... }` invocation (doc comments skipped).
fn declared_ids(source: &str) -> Vec<&str> {
    let Some((_, block)) = source.split_once("\nentity_id! {") else {
        return Vec::new();
    };
    let block = block.split_once("\n}").map_or(block, |(inside, _)| inside);
    block
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_suffix(';'))
        .filter(|name| !name.is_empty() && name.chars().all(char::is_alphanumeric))
        .collect()
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={IDS}");
    let source = std::fs::read_to_string(IDS).unwrap_or_else(|e| panic!("reading {IDS}: {e}"));
    let ids = declared_ids(&source);
    assert!(
        !ids.is_empty(),
        "no `entity_id! {{ ... }}` block found in {IDS}"
    );
    let mut config = utoipa_config::Config::new();
    for id in ids {
        config = config.alias_for(id, "uuid::Uuid");
    }
    config.write_to_file();
}
