//! Pure validation of a parsed descriptor: every rule checked, every problem reported.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use crate::{
    API_VERSION, ConnectorDescriptor, DescriptorError, Diagnostic, Diagnostics, Parameter,
    ParameterType, RESERVED_PARAMETERS,
};

/// Longest string value accepted when a parameter sets no `maxLength`.
pub const DEFAULT_MAX_LENGTH: u32 = 1024;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern compiles")
}

/// At most [`crate::MAX_CONNECTOR_NAME_LEN`] characters (1 + 36 + 1).
static CONNECTOR_NAME: LazyLock<Regex> =
    LazyLock::new(|| regex("^[a-z]([-a-z0-9]{0,36}[a-z0-9])?$"));
static PARAMETER_NAME: LazyLock<Regex> = LazyLock::new(|| regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$"));
static SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| regex("^[a-z0-9]([-_.a-z0-9]*[a-z0-9])?$"));
static SEMVER: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$"));
static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
    )
});
static TAG: LazyLock<Regex> = LazyLock::new(|| regex(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"));
static DIGEST: LazyLock<Regex> = LazyLock::new(|| regex(r"^sha256:[0-9a-f]{64}$"));
static QUANTITY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"));

/// Programs that run code given to them as text: shells, launchers that exec another
/// program, and script interpreters. None may appear anywhere in an extract command.
const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "ash",
    "dash",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "fish",
    "busybox",
    "env",
    "xargs",
    "nice",
    "nohup",
    "timeout",
    "tini",
    "dumb-init",
    "su",
    "sudo",
    "python",
    "python3",
    "perl",
    "ruby",
    "node",
    "php",
    "lua",
    "awk",
    "gawk",
];
const RESOURCE_NAMES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// A descriptor that passed every rule. Only this type reaches the compiler.
#[derive(Clone, Debug)]
pub struct ValidatedDescriptor {
    descriptor: ConnectorDescriptor,
    file: String,
}

impl Deref for ValidatedDescriptor {
    type Target = ConnectorDescriptor;
    fn deref(&self) -> &ConnectorDescriptor {
        &self.descriptor
    }
}

impl ValidatedDescriptor {
    /// The connector's name.
    pub fn name(&self) -> &str {
        &self.descriptor.name.value
    }

    /// The file the descriptor was read from, as its caller named it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The declared parameter named `name`.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.descriptor
            .parameters
            .iter()
            .find(|p| p.name.value == name)
    }

    /// The image reference (`repository:tag` or `repository@digest`), with the registry host
    /// replaced by `registry` when one is given (`mirror.example.com/outpost`).
    pub fn image_reference(&self, registry: Option<&str>) -> String {
        let image = &self.descriptor.image;
        let repository = match registry {
            Some(registry) => {
                let path = strip_registry_host(&image.repository.value);
                format!("{}/{path}", registry.trim_end_matches('/'))
            }
            None => image.repository.value.clone(),
        };
        match (&image.digest, &image.tag) {
            (Some(digest), _) => format!("{repository}@{}", digest.value),
            (None, Some(tag)) => format!("{repository}:{}", tag.value),
            (None, None) => unreachable!("validation requires a tag or a digest"),
        }
    }
}

/// `ghcr.io/outpost-agent/outpost` → `outpost-agent/outpost`; a repository without a
/// registry host is returned as it is. A first component is a host when it has a dot or a
/// port, or is `localhost` (the rule container runtimes use).
fn strip_registry_host(repository: &str) -> &str {
    match repository.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repository,
    }
}

/// Why a value does not fit a parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl Parameter {
    /// Checks a value (as JSON) against the parameter's type and constraints.
    pub fn check_value(&self, value: &Value) -> Result<(), ValueError> {
        let fail = |message: String| Err(ValueError(message));
        // Argo evaluates `{{…}}` in the arguments it passes: a value must never carry one.
        if let Some(text) = value.as_str()
            && (text.contains("{{") || text.contains("}}"))
        {
            return fail(
                "values may not contain `{{` or `}}` (Argo would evaluate them)".to_owned(),
            );
        }
        // A control character (a newline above all) in an argument could smuggle a second
        // line into a log, a file path or a connection string.
        if let Some(text) = value.as_str()
            && let Some(c) = text.chars().find(|c| c.is_control())
        {
            return fail(format!(
                "values may not contain control characters (found U+{:04X})",
                u32::from(c)
            ));
        }
        match self.kind.value {
            ParameterType::String => {
                let Some(text) = value.as_str() else {
                    return fail(format!("expected a string, found {value}"));
                };
                if self.format == Some(crate::StringFormat::Regex)
                    && let Err(error) = Regex::new(text)
                {
                    let message = error.to_string();
                    let last = message.lines().last().unwrap_or(&message).trim().to_owned();
                    return fail(format!("{value} is not a regular expression: {last}"));
                }
                let max = self
                    .max_length
                    .as_ref()
                    .map_or(DEFAULT_MAX_LENGTH, |m| m.value);
                if text.chars().count() > max as usize {
                    return fail(format!("longer than {max} characters"));
                }
                if let Some(pattern) = &self.pattern {
                    let re = anchored(&pattern.value).map_err(|e| {
                        ValueError(format!("pattern `{}` does not compile: {e}", pattern.value))
                    })?;
                    if !re.is_match(text) {
                        return fail(format!(
                            "{value} does not match pattern `{}`",
                            pattern.value
                        ));
                    }
                }
                Ok(())
            }
            ParameterType::Integer => {
                let Some(number) = value.as_i64() else {
                    return fail(format!("expected an integer, found {value}"));
                };
                if let Some(min) = &self.minimum
                    && number < min.value
                {
                    return fail(format!("{number} is less than the minimum {}", min.value));
                }
                if let Some(max) = &self.maximum
                    && number > max.value
                {
                    return fail(format!(
                        "{number} is greater than the maximum {}",
                        max.value
                    ));
                }
                Ok(())
            }
            ParameterType::Boolean => match value {
                Value::Bool(_) => Ok(()),
                _ => fail(format!("expected true or false, found {value}")),
            },
            ParameterType::Enum => {
                let allowed = self
                    .values
                    .as_ref()
                    .map(|v| v.value.as_slice())
                    .unwrap_or_default();
                match value.as_str() {
                    Some(text) if allowed.iter().any(|a| a == text) => Ok(()),
                    _ => fail(format!("{value} is not one of: {}", allowed.join(", "))),
                }
            }
        }
    }
}

/// A parameter's pattern must match the whole value, not a part of it.
fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

struct Checker<'a> {
    file: &'a str,
    found: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at(
        &mut self,
        location: Location,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.found
            .push(Diagnostic::new(self.file, location, field, message));
        self.found.last_mut().expect("just pushed")
    }

    fn matches(&mut self, value: &Spanned<String>, field: &str, re: &Regex, what: &str) {
        if !re.is_match(&value.value) {
            self.at(
                value.referenced,
                field,
                format!("`{}` is not {what}", value.value),
            );
        }
    }
}

impl ConnectorDescriptor {
    /// Checks every rule and returns the validated descriptor, or every problem found.
    pub fn validate(self, file: &str) -> Result<ValidatedDescriptor, DescriptorError> {
        let mut check = Checker {
            file,
            found: Vec::new(),
        };
        let d = &self;

        if d.api_version.value != API_VERSION {
            check
                .at(
                    d.api_version.referenced,
                    "apiVersion",
                    format!("unsupported version `{}`", d.api_version.value),
                )
                .help = Some(format!("this release reads `{API_VERSION}`"));
        }
        check.matches(
            &d.name,
            "name",
            &CONNECTOR_NAME,
            "a lowercase DNS label of at most 38 characters, so that each run's Workflow name \
             `outpost-<name>-<16 hex digits>` fits the 63 characters Kubernetes and Argo allow",
        );
        check.matches(
            &d.version,
            "version",
            &SEMVER,
            "a semantic version (MAJOR.MINOR.PATCH)",
        );
        check_image(&mut check, d);
        check_command(&mut check, d);
        check_parameters(&mut check, d);
        check_secrets(&mut check, d);
        check_resources(&mut check, d);
        if let Some(retries) = &d.retries
            && retries.value.backoff_factor == 0
        {
            check.at(
                retries.referenced,
                "retries.backoffFactor",
                "must be at least 1",
            );
        }
        if let Some(retries) = &d.retries {
            for (field, duration) in [
                ("retries.backoffDuration", &retries.value.backoff_duration),
                ("retries.backoffCap", &retries.value.backoff_cap),
            ] {
                if !outpost_core::ids::is_go_duration(duration) {
                    check.at(
                        retries.referenced,
                        field,
                        format!("`{duration}` is not a Go duration (`30s`, `10m`)"),
                    );
                }
            }
        }
        if let Some(timeouts) = &d.timeouts
            && timeouts.value.run_seconds == 0
        {
            check.at(
                timeouts.referenced,
                "timeouts.runSeconds",
                "must be at least 1",
            );
        }
        check_transfer_modes(&mut check, d);
        check_egress(&mut check, d);

        if check.found.is_empty() {
            return Ok(ValidatedDescriptor {
                descriptor: self,
                file: file.to_owned(),
            });
        }
        let mut found = check.found;
        found.sort_by_key(|d| (d.line, d.column));
        Err(DescriptorError::Invalid {
            file: file.to_owned(),
            diagnostics: Diagnostics(found),
        })
    }
}

fn check_image(check: &mut Checker<'_>, d: &ConnectorDescriptor) {
    let image = &d.image;
    check.matches(
        &image.repository,
        "image.repository",
        &REPOSITORY,
        "a valid image repository",
    );
    match (&image.tag, &image.digest) {
        (None, None) => {
            check
                .at(
                    image.repository.referenced,
                    "image",
                    "neither `tag` nor `digest` is set",
                )
                .help = Some("pin the image with a fixed `tag` or a `digest`".into());
        }
        (Some(tag), Some(_)) => {
            check.at(
                tag.referenced,
                "image",
                "both `tag` and `digest` are set; give one",
            );
        }
        (Some(tag), None) if tag.value.eq_ignore_ascii_case("latest") => {
            check
                .at(
                    tag.referenced,
                    "image.tag",
                    "`latest` is not a fixed version",
                )
                .help = Some(
                "use a release tag (`0.1.0`) or a digest, so every run pulls the same image".into(),
            );
        }
        (Some(tag), None) => check.matches(tag, "image.tag", &TAG, "a valid image tag"),
        (None, Some(digest)) => check.matches(
            digest,
            "image.digest",
            &DIGEST,
            "a digest (`sha256:` and 64 lowercase hex digits)",
        ),
    }
}

fn check_command(check: &mut Checker<'_>, d: &ConnectorDescriptor) {
    let command = &d.extract.command;
    if command.value.is_empty() {
        check.at(command.referenced, "extract.command", "must not be empty");
    }
    for argument in &command.value {
        let base = argument.rsplit('/').next().unwrap_or(argument);
        if SHELLS.contains(&base) {
            check
                .at(command.referenced, "extract.command", format!("`{argument}` is a shell, launcher or interpreter"))
                .help = Some("run the connector's program directly; parameters are passed as separate arguments, never through a shell".into());
        }
    }
    if command
        .value
        .iter()
        .any(|arg| arg.trim().is_empty() || arg.contains("{{"))
    {
        check.at(
            command.referenced,
            "extract.command",
            "arguments must be non-empty literals (no `{{…}}` expressions)",
        );
    }
}

fn check_parameters(check: &mut Checker<'_>, d: &ConnectorDescriptor) {
    let mut seen = BTreeSet::new();
    for (i, p) in d.parameters.iter().enumerate() {
        let at = |field: &str| format!("parameters[{i}].{field}");
        let name = &p.name;
        check.matches(
            name,
            &at("name"),
            &PARAMETER_NAME,
            "a lowercase name with dashes (`ssl-mode`)",
        );
        if RESERVED_PARAMETERS.contains(&name.value.as_str()) {
            check.at(
                name.referenced,
                at("name"),
                format!("`{}` is reserved for the compiler", name.value),
            );
        }
        if !seen.insert(name.value.as_str()) {
            check.at(
                name.referenced,
                at("name"),
                format!("duplicate parameter `{}`", name.value),
            );
        }
        if p.description.trim().is_empty() {
            check.at(name.referenced, at("description"), "must not be empty");
        }
        let kind = p.kind.value;
        let misplaced = |check: &mut Checker<'_>, location: Location, field: &str, only: &str| {
            check.at(
                location,
                at(field),
                format!("`{field}` applies to {only} parameters, not `{kind}`"),
            );
        };
        if let Some(pattern) = &p.pattern {
            if kind != ParameterType::String {
                misplaced(check, pattern.referenced, "pattern", "`string`");
            } else if let Err(error) =
                regex_syntax::Parser::new().parse(&format!("^(?:{})$", pattern.value))
            {
                // Parsing proves the pattern valid; compiling it waits for the first value
                // checked against it (most patterns belong to required parameters).
                let message = error.to_string();
                let last = message.lines().last().unwrap_or(&message).trim().to_owned();
                check.at(
                    pattern.referenced,
                    at("pattern"),
                    format!("invalid regular expression: {last}"),
                );
            }
        }
        if let Some(max_length) = &p.max_length
            && kind != ParameterType::String
        {
            misplaced(check, max_length.referenced, "maxLength", "`string`");
        }
        if p.format.is_some() && kind != ParameterType::String {
            misplaced(check, name.referenced, "format", "`string`");
        }
        for (field, bound) in [("minimum", &p.minimum), ("maximum", &p.maximum)] {
            if let Some(bound) = bound
                && kind != ParameterType::Integer
            {
                misplaced(check, bound.referenced, field, "`integer`");
            }
        }
        if let (Some(min), Some(max)) = (&p.minimum, &p.maximum)
            && min.value > max.value
        {
            check.at(
                max.referenced,
                at("maximum"),
                format!("{} is less than the minimum {}", max.value, min.value),
            );
        }
        match (&p.values, kind) {
            (None, ParameterType::Enum) => {
                check.at(
                    p.kind.referenced,
                    at("values"),
                    "an `enum` parameter must list its `values`",
                );
            }
            (Some(values), ParameterType::Enum)
                if values
                    .value
                    .iter()
                    .any(|v| v.contains("{{") || v.contains("}}")) =>
            {
                check.at(
                    values.referenced,
                    at("values"),
                    "values may not contain `{{` or `}}`",
                );
            }
            (Some(values), ParameterType::Enum) => {
                let unique: BTreeSet<_> = values.value.iter().collect();
                if values.value.is_empty() || unique.len() != values.value.len() {
                    check.at(
                        values.referenced,
                        at("values"),
                        "must list at least one value, each once",
                    );
                }
            }
            (Some(values), _) => misplaced(check, values.referenced, "values", "`enum`"),
            (None, _) => {}
        }
        if !p.required
            && p.default.is_none()
            && matches!(kind, ParameterType::Enum | ParameterType::Boolean)
        {
            // Argo rejects an empty value for a parameter with an enum list.
            check
                .at(
                    p.kind.referenced,
                    at("default"),
                    format!("an optional `{kind}` parameter needs a default"),
                )
                .help = Some("add `default`, or set `required: true`".into());
        }
        if let Some(default) = &p.default {
            if p.required {
                check
                    .at(
                        default.referenced,
                        at("default"),
                        "a required parameter cannot have a default",
                    )
                    .help = Some("remove `default`, or set `required: false`".into());
            } else if let Err(error) = p.check_value(&default.value) {
                check.at(
                    default.referenced,
                    at("default"),
                    format!("default does not fit the parameter: {error}"),
                );
            }
        }
    }
}

fn check_secrets(check: &mut Checker<'_>, d: &ConnectorDescriptor) {
    let mut seen = BTreeSet::new();
    for (i, secret) in d.secrets.iter().enumerate() {
        let field = format!("secrets[{i}].name");
        check.matches(
            &secret.name,
            &field,
            &SECRET_NAME,
            "a valid secret key and file name",
        );
        if !seen.insert(secret.name.value.as_str()) {
            check.at(
                secret.name.referenced,
                field,
                format!("duplicate secret `{}`", secret.name.value),
            );
        }
    }
}

fn check_resources(check: &mut Checker<'_>, d: &ConnectorDescriptor) {
    let Some(resources) = &d.resources else {
        return;
    };
    for (group, values) in [
        ("requests", &resources.value.requests),
        ("limits", &resources.value.limits),
    ] {
        for (name, quantity) in values {
            let field = format!("resources.{group}.{name}");
            if !RESOURCE_NAMES.contains(&name.as_str()) {
                check.at(
                    resources.referenced,
                    &field,
                    format!(
                        "unknown resource `{name}` (expected one of: {})",
                        RESOURCE_NAMES.join(", ")
                    ),
                );
            } else if !QUANTITY.is_match(quantity) {
                check.at(
                    resources.referenced,
                    field,
                    format!("`{quantity}` is not a Kubernetes quantity (`100m`, `256Mi`)"),
                );
            }
        }
    }
}

fn check_transfer_modes(check: &mut Checker<'_>, d: &ConnectorDescriptor) {
    let modes = &d.transfer_modes;
    let unique: BTreeSet<_> = modes.value.iter().collect();
    if modes.value.is_empty() || unique.len() != modes.value.len() {
        check.at(
            modes.referenced,
            "transferModes",
            "must list at least one transfer mode, each once",
        );
    }
}

fn check_egress(check: &mut Checker<'_>, d: &ConnectorDescriptor) {
    for (field, reference, wanted) in [
        (
            "egress.hostParameter",
            &d.egress.host_parameter,
            ParameterType::String,
        ),
        (
            "egress.portParameter",
            &d.egress.port_parameter,
            ParameterType::Integer,
        ),
    ] {
        let Some(reference) = reference else { continue };
        match d
            .parameters
            .iter()
            .find(|p| p.name.value == reference.value)
        {
            None => {
                let names: Vec<&str> = d.parameters.iter().map(|p| p.name.value.as_str()).collect();
                let diagnostic = check.at(
                    reference.referenced,
                    field,
                    format!("no parameter named `{}`", reference.value),
                );
                if let Some(best) = crate::yaml::closest(&reference.value, &names) {
                    diagnostic.help = Some(format!("did you mean `{best}`?"));
                }
            }
            Some(p) if p.kind.value != wanted => {
                check.at(
                    reference.referenced,
                    field,
                    format!(
                        "parameter `{}` is `{}`, expected `{wanted}`",
                        reference.value, p.kind.value
                    ),
                );
            }
            // Where the credentials go is the connection's to say, never a job's.
            Some(p) if p.scope != crate::ParameterScope::Connection => {
                check.at(
                    p.name.referenced,
                    field,
                    format!(
                        "parameter `{}` names where credentials are sent: it must have `scope: connection`",
                        reference.value
                    ),
                );
            }
            Some(_) => {}
        }
    }
}

impl ValidatedDescriptor {
    /// Turns raw `name=value` arguments into typed values checked against the declared
    /// parameters: every problem is reported (unknown names with a did-you-mean, ill-typed
    /// or out-of-bounds values, missing required parameters, repeats). An empty value means
    /// "not set"; unset parameters take their default. The result holds every declared
    /// parameter that has a value.
    pub fn resolve_parameters(
        &self,
        raw: &[(String, String)],
    ) -> Result<BTreeMap<String, Value>, Vec<String>> {
        self.resolve(raw, false)
    }

    /// [`Self::resolve_parameters`] for what a job may set: `scope: connection` parameters
    /// are refused (the connection's Secret fixes them), and only `scope: job` ones are
    /// resolved.
    pub fn resolve_job_parameters(
        &self,
        raw: &[(String, String)],
    ) -> Result<BTreeMap<String, Value>, Vec<String>> {
        self.resolve(raw, true)
    }

    fn resolve(
        &self,
        raw: &[(String, String)],
        job_only: bool,
    ) -> Result<BTreeMap<String, Value>, Vec<String>> {
        let mut problems = Vec::new();
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        let names: Vec<&str> = self
            .descriptor
            .parameters
            .iter()
            .map(|p| p.name.value.as_str())
            .collect();
        for (name, value) in raw {
            let Some(parameter) = self.parameter(name) else {
                let mut problem =
                    format!("unknown parameter `{name}` for connector `{}`", self.name());
                if let Some(best) = crate::yaml::closest(name, &names) {
                    problem.push_str(&format!(" (did you mean `{best}`?)"));
                }
                problems.push(problem);
                continue;
            };
            if job_only && parameter.scope == crate::ParameterScope::Connection {
                problems.push(format!(
                    "parameter `{name}` is fixed by the connection (key `{name}` of its Secret): a job may not set it"
                ));
                continue;
            }
            if given
                .insert(parameter.name.value.as_str(), value.as_str())
                .is_some()
            {
                problems.push(format!("parameter `{name}` is given twice"));
            }
        }
        let mut resolved = BTreeMap::new();
        for parameter in &self.descriptor.parameters {
            let name = parameter.name.value.as_str();
            if job_only && parameter.scope == crate::ParameterScope::Connection {
                continue;
            }
            let value = match given.get(name).filter(|v| !v.is_empty()) {
                Some(text) => match typed_value(parameter.kind.value, text) {
                    Ok(value) => value,
                    Err(problem) => {
                        problems.push(format!("parameter `{name}`: {problem}"));
                        continue;
                    }
                },
                None if parameter.required => {
                    problems.push(match parameter.scope {
                        crate::ParameterScope::Job => format!("parameter `{name}` is required"),
                        crate::ParameterScope::Connection => format!(
                            "parameter `{name}` is required: the connection's Secret must hold key `{name}`"
                        ),
                    });
                    continue;
                }
                None => match &parameter.default {
                    Some(default) => default.value.clone(),
                    None => continue,
                },
            };
            match parameter.check_value(&value) {
                Ok(()) => {
                    resolved.insert(name.to_owned(), value);
                }
                Err(error) => problems.push(format!("parameter `{name}`: {error}")),
            }
        }
        if problems.is_empty() {
            Ok(resolved)
        } else {
            Err(problems)
        }
    }
}

/// A raw argument read as the parameter's type.
fn typed_value(kind: ParameterType, text: &str) -> Result<Value, String> {
    match kind {
        ParameterType::String | ParameterType::Enum => Ok(Value::from(text)),
        ParameterType::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected an integer, found {text:?}")),
        ParameterType::Boolean => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, found {text:?}")),
        },
    }
}
