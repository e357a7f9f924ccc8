//! Include and exclude filters for databases, schemas and tables.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// One level's include and exclude expressions (searched, not anchored: anchor with `^…$`).
#[derive(Clone, Debug, Default)]
pub struct Rule {
    include: Option<Regex>,
    exclude: Option<Regex>,
}

impl Rule {
    /// `include-<level>` and `exclude-<level>` from resolved parameters; an empty or absent
    /// value means no filter. Each bad expression is added to `problems`.
    pub fn read(
        parameters: &BTreeMap<String, Value>,
        level: &str,
        problems: &mut Vec<String>,
    ) -> Self {
        let mut compile = |name: String| -> Option<Regex> {
            let text = parameters
                .get(&name)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())?;
            match Regex::new(text) {
                Ok(regex) => Some(regex),
                Err(error) => {
                    problems.push(format!(
                        "parameter `{name}`: invalid regular expression: {error}"
                    ));
                    None
                }
            }
        };
        Self {
            include: compile(format!("include-{level}")),
            exclude: compile(format!("exclude-{level}")),
        }
    }

    /// Whether either expression is set (else every name passes).
    pub fn is_set(&self) -> bool {
        self.include.is_some() || self.exclude.is_some()
    }

    /// Whether `name` passes: matches the include expression (when set) and not the exclude.
    pub fn allows(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(name))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// The filters of one extraction.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Database names.
    pub databases: Rule,
    /// Schema names.
    pub schemas: Rule,
    /// Tables and views, as `schema.name`.
    pub tables: Rule,
}

impl Filters {
    /// Reads `include-databases`, `exclude-databases`, `include-schemas`, … from resolved
    /// parameters; an empty or absent value means no filter. Every bad expression is reported.
    pub fn from_parameters(parameters: &BTreeMap<String, Value>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let filters = Self {
            databases: Rule::read(parameters, "databases", &mut problems),
            schemas: Rule::read(parameters, "schemas", &mut problems),
            tables: Rule::read(parameters, "tables", &mut problems),
        };
        if problems.is_empty() {
            Ok(filters)
        } else {
            Err(problems)
        }
    }

    /// Whether a table or view passes the table filter.
    pub fn allows_table(&self, schema: &str, name: &str) -> bool {
        self.tables.allows(&format!("{schema}.{name}"))
    }
}
