//! The query audit, checked with a real SQL parser (`sqlparser`): every statement a run's
//! manifest lists reads only the source's catalog. A statement is accepted only when it
//! parses, is a read (a query, PostgreSQL's `COPY (query) TO STDOUT`, a `SHOW`, a `PRAGMA`,
//! or a read-only session setting), and every relation it names (CTEs aside) is a catalog
//! object of that source.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use metadata_extract::Manifest;
use sqlparser::ast::{ObjectName, Statement, Visit, Visitor};
use sqlparser::dialect::{
    Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect, SnowflakeDialect,
};
use sqlparser::parser::Parser;

/// Which catalog objects a source may read.
#[derive(Clone, Copy, Debug)]
pub enum Catalog {
    Postgres,
    Mysql,
    Sqlite,
    Snowflake,
}

impl Catalog {
    fn dialect(self) -> Box<dyn Dialect> {
        match self {
            Self::Postgres => Box::new(PostgreSqlDialect {}),
            Self::Mysql => Box::new(MySqlDialect {}),
            Self::Sqlite => Box::new(SQLiteDialect {}),
            Self::Snowflake => Box::new(SnowflakeDialect {}),
        }
    }

    /// Whether `name` (its parts, unquoted) is one of this source's catalog objects.
    fn allows(self, parts: &[String]) -> bool {
        let lower: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        let last = lower.last().map(String::as_str).unwrap_or_default();
        match (self, lower.as_slice()) {
            (Self::Postgres, [schema, _]) => {
                schema == "pg_catalog" || schema == "information_schema"
            }
            // Unqualified: the catalog's own tables and functions (`pg_class`, `unnest`) are
            // found through the search path's pg_catalog.
            (Self::Postgres, [_]) => {
                last.starts_with("pg_")
                    || ["unnest", "generate_series", "generate_subscripts"].contains(&last)
            }
            (Self::Mysql, [schema, _]) => schema == "information_schema",
            // `sqlite_stat1`: ANALYZE's statistics, where row estimates come from (as
            // PostgreSQL's from `pg_class.reltuples`); never a user table's rows.
            (Self::Sqlite, [_]) => {
                ["sqlite_schema", "sqlite_master", "sqlite_stat1"].contains(&last)
                    || last.starts_with("pragma_")
            }
            (Self::Snowflake, [_, schema, _]) | (Self::Snowflake, [schema, _]) => {
                schema == "information_schema"
                    || (lower.len() == 3 && lower[0] == "snowflake" && lower[1] == "account_usage")
            }
            _ => false,
        }
    }
}

/// The relations a statement names, and the CTEs it defines.
#[derive(Default)]
struct Names {
    relations: Vec<Vec<String>>,
    ctes: BTreeSet<String>,
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.relations.push(
            relation
                .0
                .iter()
                .map(|part| {
                    part.as_ident()
                        .map(|ident| ident.value.clone())
                        .unwrap_or_else(|| part.to_string())
                })
                .collect(),
        );
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &sqlparser::ast::Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

/// Why `statement` is not catalog-only, or `None` when it is.
pub fn refusal(catalog: Catalog, statement: &str) -> Option<String> {
    let dialect = catalog.dialect();
    let parsed = match Parser::parse_sql(dialect.as_ref(), statement) {
        Ok(parsed) => parsed,
        Err(error) => return Some(format!("does not parse: {error}")),
    };
    if parsed.len() != 1 {
        return Some(format!("holds {} statements", parsed.len()));
    }
    let statement = &parsed[0];
    let read = match statement {
        Statement::Query(_) | Statement::Pragma { .. } => true,
        Statement::Copy { source, to, .. } => {
            *to && matches!(source, sqlparser::ast::CopySource::Query(_))
        }
        Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowObjects(_)
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowCreate { .. } => true,
        // `SET SESSION TRANSACTION READ ONLY`: makes the session read-only, reads nothing.
        Statement::Set(sqlparser::ast::Set::SetTransaction { .. }) => {
            statement.to_string().to_uppercase().contains("READ ONLY")
        }
        _ => false,
    };
    if !read {
        return Some(format!("is not a read: {statement}"));
    }
    // A `SHOW … IN SCHEMA x` lists x's objects from the catalog: the name it carries is a
    // scope, never a table whose rows are read.
    if statement.to_string().to_uppercase().starts_with("SHOW ") {
        return None;
    }
    let mut names = Names::default();
    let _ = statement.visit(&mut names);
    for relation in &names.relations {
        let cte = relation.len() == 1 && names.ctes.contains(&relation[0].to_lowercase());
        if !cte && !catalog.allows(relation) {
            return Some(format!(
                "reads `{}`, which is not a catalog object",
                relation.join(".")
            ));
        }
    }
    None
}

/// Every statement `manifest` lists is catalog-only; prints how many, by kind. The checker
/// first refuses a read of a user table and a write, so it is known to be able to fail.
pub fn assert_catalog_only(catalog: Catalog, manifest: &Manifest) {
    for bad in [
        "SELECT * FROM public.customers",
        "DELETE FROM pg_catalog.pg_class",
    ] {
        assert!(
            refusal(catalog, bad).is_some(),
            "the checker accepts `{bad}`"
        );
    }
    assert!(
        !manifest.queries.is_empty(),
        "the manifest lists no statement"
    );
    let refused: Vec<String> = manifest
        .queries
        .iter()
        .filter_map(|q| {
            refusal(catalog, &q.statement).map(|why| format!("{why}\n  in: {}", q.statement))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "{catalog:?}: not catalog-only:\n{}",
        refused.join("\n")
    );
    let sent: u64 = manifest.queries.iter().map(|q| q.count).sum();
    println!(
        "{catalog:?}: {} distinct statements ({sent} sent), every one catalog-only",
        manifest.queries.len()
    );
}
