// Shipped migration: never edit. Its text is fixed, `schema_migrations` holds its SHA-256, and `coordctl migrate`
// refuses a database whose applied text differs. A change is a new version.

extension CoordinationSchema {
    /// v5, scoped tokens (docs/PRIVACY.md, "Scopes"): a token may be limited to countries, responses and warehouses;
    /// empty arrays are unscoped, as every token made before this version is. Admins are always unscoped.
    static let v5 = #"""
    ALTER TABLE api_tokens ADD COLUMN scope_countries text[] NOT NULL DEFAULT '{}';
    ALTER TABLE api_tokens ADD COLUMN scope_responses text[] NOT NULL DEFAULT '{}';
    ALTER TABLE api_tokens ADD COLUMN scope_warehouses text[] NOT NULL DEFAULT '{}';
    ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_admins_unscoped CHECK (role <> 'admin' OR
        (cardinality(scope_countries) = 0 AND cardinality(scope_responses) = 0 AND cardinality(scope_warehouses) = 0));
    """#
}
