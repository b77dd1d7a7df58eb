import Foundation

/// HXL hashtags per column (DOMAIN.md), for `?format=hxl`.
public enum HXLTags {
    public static let stock = ["warehouse": "#loc+code", "warehouse_name": "#loc+name", "country": "#country+code", "pcode": "#adm1+code",
                        "item": "#item+code", "item_name": "#item+name", "unit": "#item+unit", "on_hand": "#capacity+num",
                        "in_transit_in": "#capacity+num+transit", "minimum": "#capacity+num+min", "target": "#capacity+num+target",
                        "status": "#status", "updated_at": "#date+reported"]
    public static let deployments = ["id": "#meta+id", "response": "#crisis+code", "person_name": "#contact+name", "profile": "#contact+role",
                              "cluster": "#sector+cluster+code", "response_country": "#country+dest+code", "duty_station": "#adm1+dest+code",
                              "start_date": "#date+start", "end_date": "#date+end", "status": "#status+code"]
    public static let tasks = ["id": "#meta+id", "response": "#crisis+code", "cluster": "#sector+cluster+code", "lead_org": "#org+name",
                        "title": "#activity+name", "pcode": "#adm1+code", "status": "#status+name", "due": "#date+end", "assignee": "#contact+name"]
}

/// CSV (RFC 4180) and HXL rendering of a result table.
extension ResultTable {
    static func field(_ v: String?) -> String {
        guard let v else { return "" }
        // A leading =, +, - or @ would be read as a formula by spreadsheets: prefix it (CSV injection).
        var text = v
        if let first = text.first, "=+-@".contains(first), Double(text) == nil { text = "'" + text }
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }

    /// CSV with a header row, and the HXL hashtag row under it when `hxl` is given.
    public func csv(hxl: [String: String]?) -> String {
        var lines = [columns.map(Self.field).joined(separator: ",")]
        if let hxl { lines.append(columns.map { hxl[$0] ?? "" }.joined(separator: ",")) }
        for row in rows { lines.append(row.map(Self.field).joined(separator: ",")) }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}

