import Events
import Foundation

/// Collects every field problem of a command, so a client learns them all at once.
public struct Validator {
    public init() {}
    private(set) var errors: [FieldError] = []

    static let maxQuantity: Int64 = 10_000_000
    static let maxName = 200
    static let maxText = 4000

    mutating func fail(_ field: String, _ message: String) { errors.append(FieldError(field, message)) }

    /// Client-chosen identifiers: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
    static func isID(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 64 else { return false }
        for (i, c) in u.enumerated() {
            let alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
            guard alnum || (i > 0 && (c == 46 || c == 95 || c == 45)) else { return false }
        }
        return true
    }

    mutating func id(_ value: String, _ field: String) {
        if !Self.isID(value) { fail(field, "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}") }
    }

    mutating func id(_ value: String?, _ field: String) {
        if let value { id(value, field) }
    }

    mutating func country(_ value: String, _ field: String) {
        if !Countries.iso3.contains(value) { fail(field, "must be an ISO 3166-1 alpha-3 country code such as PHL") }
    }

    mutating func country(_ value: String?, _ field: String) {
        if let value { country(value, field) }
    }

    /// OCHA P-codes: two letters (the country's ISO2) then letters and digits, always text.
    mutating func pcode(_ value: String?, _ field: String) {
        guard let value else { return }
        let u = Array(value.utf8)
        let ok = u.count >= 2 && u.count <= 20 && u.prefix(2).allSatisfy { $0 >= 65 && $0 <= 90 }
            && u.dropFirst(2).allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) }
        if !ok { fail(field, "must be a P-code such as PH0837 (2 capital letters, then capitals or digits, at most 20)") }
    }

    mutating func text(_ value: String, _ field: String, max: Int = Validator.maxName) {
        if value.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) { fail(field, "must not be empty") }
        else if value.count > max { fail(field, "must be at most \(max) characters") }
        else if value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
            fail(field, "must not contain control characters")
        }
    }

    mutating func text(_ value: String?, _ field: String, max: Int = Validator.maxName) {
        if let value { text(value, field, max: max) }
    }

    mutating func quantity(_ value: Int64, _ field: String) {
        if value < 1 || value > Self.maxQuantity { fail(field, "must be a whole number from 1 to \(Self.maxQuantity)") }
    }

    mutating func oneOf(_ value: String, _ field: String, _ allowed: [String]) {
        if !allowed.contains(value) { fail(field, "must be one of " + allowed.joined(separator: ", ")) }
    }

    mutating func oneOf(_ value: String?, _ field: String, _ allowed: [String]) {
        if let value { oneOf(value, field, allowed) }
    }

    mutating func email(_ value: String?, _ field: String) {
        guard let value else { return }
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        if value.count > 254 || parts.count != 2 || parts[0].isEmpty || !parts[1].contains(".") || value.contains(" ") {
            fail(field, "must be an email address")
        }
    }

    /// How far a business time may be ahead of the server's clock: a field device's clock may run a little fast.
    static let clockSkew: TimeInterval = 15 * 60

    /// A business time: a fact has happened, so it is not in the future (beyond `clockSkew`), and it is not
    /// absurdly far in the past (catches unit and typing mistakes).
    mutating func time(_ value: Date?, _ field: String) {
        guard let value else { return }
        if value.timeIntervalSinceNow > Self.clockSkew {
            fail(field, "must not be in the future (more than \(Int(Self.clockSkew / 60)) minutes after the server's clock)")
        } else if value.timeIntervalSinceNow < -30 * 365.25 * 86_400 {
            fail(field, "must be within the last 30 years")
        }
    }

    func check() throws {
        if !errors.isEmpty { throw DomainError.validation(errors) }
    }
}

/// A calendar date (`YYYY-MM-DD`), as days since 1970-01-01: deployments and due dates are dates, not times.
public struct Day: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let daysSinceEpoch: Int

    public init(daysSinceEpoch: Int) { self.daysSinceEpoch = daysSinceEpoch }

    public init?(_ text: String) {
        guard let date = Timestamp.parseDate(text) else { return nil }
        daysSinceEpoch = Int(date.timeIntervalSince1970 / 86_400)
    }

    /// The UTC day of `date`.
    public init(_ date: Date) { daysSinceEpoch = Int(floor(date.timeIntervalSince1970 / 86_400)) }

    public var date: Date { Date(timeIntervalSince1970: Double(daysSinceEpoch) * 86_400) }
    public var description: String { Timestamp.formatDate(date) }
    public static func < (a: Day, b: Day) -> Bool { a.daysSinceEpoch < b.daysSinceEpoch }
    public func adding(days: Int) -> Day { Day(daysSinceEpoch: daysSinceEpoch + days) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let day = Day(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a date YYYY-MM-DD")
        }
        self = day
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

enum Countries {
    /// ISO 3166-1 alpha-3, officially assigned codes.
    static let iso3: Set<String> = Set("""
        ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD BGR BHR BHS BIH BLM
        BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR COD COG COK COL COM CPV CRI CUB CUW CXR
        CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB
        GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA
        JAM JEY JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA
        MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR
        NPL NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS
        SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON
        TTO TUN TUR TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
}
