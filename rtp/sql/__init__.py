"""SQL: templates, typed parameters, escaping, analysis, composition and validation rules."""
