// Shipped migration: never edit. Its text is fixed, `schema_migrations` holds its SHA-256, and `coordctl migrate`
// refuses a database whose applied text differs. A change is a new version.

extension CoordinationSchema {
    /// v4, who may see personal data (docs/PRIVACY.md):
    /// - tokens may expire, and hold personal-data access or not. Tokens made before this version were operators'
    ///   and admins' who saw names: they keep that access; viewers never have it.
    /// - `personal_data_reads`: who read which people's personal data, when, through which route: the ids only.
    static let v4 = #"""
    ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
    ALTER TABLE api_tokens ADD COLUMN personal_data boolean NOT NULL DEFAULT false;
    UPDATE api_tokens SET personal_data = true WHERE role IN ('operator', 'admin');
    ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_viewers_no_personal_data CHECK (NOT (role = 'viewer' AND personal_data));
    CREATE TABLE personal_data_reads (
        id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at          timestamptz NOT NULL DEFAULT now(),
        token_id    text        NOT NULL,
        subject     text        NOT NULL,
        route       text        NOT NULL,
        people      text[]      NOT NULL,
        request_id  text        NOT NULL
    );
    CREATE INDEX personal_data_reads_at ON personal_data_reads (at);
    CREATE INDEX personal_data_reads_people ON personal_data_reads USING gin (people);
    """#
}
