import Events
import Foundation

/// The shipped demo: Typhoon Halong makes landfall in Eastern Visayas, Philippines, on 4 October 2026,
/// and the regional team responds over seven weeks (the last event on 24 November: business times in the
/// future are refused, so the whole scenario lies in the past). Deterministic (a fixed seed), so every load is the
/// same; every line has an idempotency key, so loading twice writes nothing new.
///
/// `lines` is NDJSON in the import format (`{"command": NAME, ...body}`): `coordctl demo print` shows it,
/// `coordctl demo load` and `make run` load it, and `coordctl import` accepts it.
public enum DemoScenario {
    public static let responseID = "PHL-2026-TC-01"
    /// Landfall: 2026-10-04T06:30:00Z.
    public static let landfall = Timestamp.parse("2026-10-04T06:30:00Z")!

    /// One command of the scenario.
    public struct Line: Sendable {
        public let command: String
        public let body: [String: any Sendable]
        public let key: String

        /// The NDJSON import form.
        public var json: String {
            var object: [String: Any] = body
            object["command"] = command
            object["idempotency_key"] = key
            let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        }

        /// The command's body only, as the API would receive it.
        public var bodyJSON: Data {
            try! JSONSerialization.data(withJSONObject: body as [String: Any], options: [.sortedKeys])
        }
    }

    /// A small deterministic generator (64-bit LCG), so the scenario never changes between loads.
    struct Rng {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
    }

    static func at(_ days: Double, hours: Double = 0) -> String {
        Timestamp.format(landfall.addingTimeInterval((days * 24 + hours) * 3600))
    }

    static func day(_ days: Int) -> String {
        Timestamp.formatDate(landfall.addingTimeInterval(Double(days) * 86_400))
    }

    /// The dispatch the scenario records wrongly and reverses (500 typed for 50).
    public static let reversedDispatch = (item: "HSHETARPW406", quantity: 500)

    /// The scenario as `demo` loads it (the default actor).
    public static var lines: [Line] { lines(actor: "demo") }

    /// The scenario's commands. `actor` is who loads it: the reversal names its dispatch by the event id that
    /// dispatch's idempotency key gives for that actor.
    public static func lines(actor: String) -> [Line] {
        var out: [Line] = []
        func add(_ command: String, _ body: [String: any Sendable]) {
            out.append(Line(command: command, body: body, key: "demo-\(out.count + 1)"))
        }
        var rng = Rng(state: 20_261_108)

        // Warehouses: three global hubs, a national warehouse in Cebu, field warehouses in Leyte and Samar.
        let warehouses: [(String, String, String, String, String?, Double, Double)] = [
            ("MNL", "Manila global hub", "PHL", "global_hub", "PH1339", 14.5086, 121.0194),
            ("NBO", "Nairobi global hub", "KEN", "global_hub", nil, -1.3192, 36.9275),
            ("PTY", "Panama global hub", "PAN", "global_hub", nil, 8.9824, -79.5199),
            ("CEB", "Cebu national warehouse", "PHL", "national", "PH0722", 10.3157, 123.8854),
            ("TAC", "Tacloban field warehouse", "PHL", "field", "PH0837", 11.2433, 125.0048),
            ("ORM", "Ormoc field warehouse", "PHL", "field", "PH0837", 11.0064, 124.6075),
            ("GUI", "Guiuan field warehouse", "PHL", "field", "PH0826", 11.0333, 125.7244),
        ]
        for w in warehouses {
            var body: [String: any Sendable] = ["code": w.0, "name": w.1, "country": w.2, "kind": w.3, "lat": w.5, "lon": w.6,
                                                "occurred_at": at(-120)]
            if let p = w.4 { body["pcode"] = p }
            add("warehouse.register", body)
        }

        // Items (IFRC/ICRC Emergency Items Catalogue codes), then kits made of them.
        let items: [(String, String, String, String)] = [
            ("HSHETARPW406", "Tarpaulin, woven plastic, 4x6 m", "piece", "shelter"),
            ("HCONJCANPF10", "Jerrycan, foldable, 10 l", "piece", "wash"),
            ("HSHEBLANCLT2", "Blanket", "piece", "shelter"),
            ("KRELCOOSETA", "Kitchen set, family of 5", "set", "household"),
            ("HSHEMNETRL", "Mosquito net, long-lasting", "piece", "health"),
            ("HHYGSOAP100G", "Soap, 100 g", "piece", "wash"),
            ("EELELAMPTOSO", "Solar lamp", "piece", "household"),
            ("HSHEROPEPP30", "Rope, polypropylene, 30 m", "piece", "shelter"),
            ("HSHESLEEMAT", "Sleeping mat", "piece", "shelter"),
            ("WWATPURTAB", "Water purification tablets, strip of 10", "strip", "wash"),
        ]
        for i in items { add("item.register", ["code": i.0, "name": i.1, "unit": i.2, "category": i.3, "occurred_at": at(-120)]) }
        add("item.register", ["code": "KRELSHEK02", "name": "Shelter kit", "unit": "kit", "category": "shelter", "occurred_at": at(-120),
                              "kit": [["item": "HSHETARPW406", "quantity": 2] as [String: any Sendable], ["item": "HSHEROPEPP30", "quantity": 1]]])
        add("item.register", ["code": "KWATHYGFAM", "name": "Family hygiene kit", "unit": "kit", "category": "wash", "occurred_at": at(-120),
                              "kit": [["item": "HHYGSOAP100G", "quantity": 5] as [String: any Sendable], ["item": "HCONJCANPF10", "quantity": 2]]])
        let stocked = items.map(\.0) + ["KRELSHEK02", "KWATHYGFAM"]

        // Prepositioning: levels and stock received months before the season.
        for (w, scale) in [("MNL", 10), ("CEB", 4), ("TAC", 1), ("GUI", 1)] {
            for item in stocked {
                let target = Int64(scale * (200 + 50 * rng.next(8)))
                add("levels.set", ["code": w, "item": item, "minimum": target / 4, "target": target, "occurred_at": at(-100)])
            }
        }
        for (w, scale) in [("MNL", 9), ("CEB", 3), ("TAC", 1)] {
            for (n, item) in stocked.enumerated() {
                add("stock.receive", ["warehouse": w, "item": item, "quantity": scale * (220 + 40 * rng.next(6)),
                                      "source": n % 3 == 0 ? "procurement" : "donation", "donor": n % 3 == 0 ? "" : "ECHO",
                                      "reference": "GRN-\(w)-\(100 + n)", "occurred_at": at(-90 + Double(n))].filter { !($0.value is String) || !($0.value as! String).isEmpty })
            }
        }

        // The response.
        // Declared before the GLIDE number exists; it arrives on day 3 and is added by a correction.
        add("response.declare", ["id": responseID, "name": "Typhoon Halong – Eastern Visayas", "country": "PHL", "hazard": "typhoon",
                                 "severity": "orange", "declared_at": at(0, hours: 2)])
        add("response.areas", ["id": responseID, "pcodes": ["PH08", "PH0826", "PH0837", "PH0860"], "occurred_at": at(0, hours: 6)])
        add("response.amend", ["id": responseID, "glide": "TC-2026-000187-PHL", "reason": "GLIDE number issued on day 3", "occurred_at": at(3)])
        add("response.severity", ["id": responseID, "severity": "red", "occurred_at": at(1, hours: 1)])

        // Stock moves: Manila and Cebu to the field, an airlift from Nairobi, distributions from the field.
        var transfers: [(String, Int)] = []
        let moves: [(String, String, String, Int)] = [
            ("MNL", "TAC", "HSHETARPW406", 1200), ("MNL", "TAC", "KRELSHEK02", 600), ("MNL", "TAC", "HCONJCANPF10", 900),
            ("CEB", "ORM", "HSHETARPW406", 400), ("CEB", "ORM", "KWATHYGFAM", 300), ("CEB", "GUI", "HSHEBLANCLT2", 350),
            ("MNL", "GUI", "KRELCOOSETA", 500), ("MNL", "GUI", "HSHEMNETRL", 800), ("MNL", "TAC", "EELELAMPTOSO", 400),
            ("MNL", "ORM", "WWATPURTAB", 600),
        ]
        for (n, m) in moves.enumerated() {
            let id = "TR-\(String(format: "%03d", n + 1))"
            add("stock.transfer", ["id": id, "from": m.0, "to": m.1, "item": m.2, "quantity": m.3, "reference": "WB-\(4000 + n)",
                                   "transport": n % 2 == 0 ? "truck" : "ferry", "response": responseID, "occurred_at": at(1.5 + Double(n) * 0.4)])
            transfers.append((id, m.3))
        }
        add("stock.receive", ["warehouse": "MNL", "item": "HSHETARPW406", "quantity": 3000, "source": "internal", "reference": "AIRLIFT-NBO-1",
                              "occurred_at": at(4)])
        for (n, t) in transfers.enumerated() where n != 9 {
            if n == 5 {
                // The Guiuan ferry arrives in two trips; after the second, what never came (35) is the loss in transit.
                add("stock.transfer.receive", ["id": t.0, "quantity": 200, "occurred_at": at(3 + Double(n) * 0.5)])
                add("stock.transfer.receive", ["id": t.0, "quantity": t.1 - 200 - 35, "final": true, "occurred_at": at(3.5 + Double(n) * 0.5)])
                continue
            }
            add("stock.transfer.receive", ["id": t.0, "quantity": t.1, "occurred_at": at(3 + Double(n) * 0.5)])
        }
        add("stock.transfer.cancel", ["id": transfers[9].0, "reason": "truck reassigned to the Ormoc route", "occurred_at": at(5.5)])
        let sites = ["Tacloban City Astrodome", "Palo evacuation centre", "Tanauan school", "Guiuan church", "Ormoc sports complex",
                     "Dulag barangay hall", "Basey covered court", "Marabut health centre"]
        let fieldStock: [(String, String, Int)] = [
            ("TAC", "HSHETARPW406", 1200), ("TAC", "KRELSHEK02", 600), ("TAC", "HCONJCANPF10", 900), ("ORM", "HSHETARPW406", 400),
            ("ORM", "KWATHYGFAM", 300), ("GUI", "HSHEBLANCLT2", 315), ("GUI", "KRELCOOSETA", 500), ("GUI", "HSHEMNETRL", 800),
        ]
        var remaining = fieldStock.map(\.2)
        for round in 0..<5 {
            for (n, f) in fieldStock.enumerated() {
                let quantity = min(remaining[n], 40 + 10 * rng.next(10))
                guard quantity > 0 else { continue }
                remaining[n] -= quantity
                add("stock.dispatch", ["warehouse": f.0, "item": f.1, "quantity": quantity, "destination": sites[(n + round) % sites.count],
                                       "response": responseID, "reference": "WB-\(5000 + round * 10 + n)", "transport": "truck",
                                       "occurred_at": at(4 + Double(round) * 6 + Double(n) * 0.3)])
            }
        }
        add("stock.adjust", ["warehouse": "TAC", "item": "HSHETARPW406", "delta": -25, "reason": "damaged", "note": "roof leak in bay 2",
                             "occurred_at": at(12)])
        // 500 typed for 50: the airlift dispatch is reversed, then recorded again as it was.
        let typo = out.count + 1
        add("stock.dispatch", ["warehouse": "MNL", "item": reversedDispatch.item, "quantity": reversedDispatch.quantity,
                               "destination": "Tacloban airport", "response": responseID, "reference": "WB-AIR-7", "transport": "air",
                               "occurred_at": at(14)])
        let typoID = CommandRunner.IdempotentIDs(actor: actor, command: DispatchStock.name, key: "demo-\(typo)").first
        add("stock.movement.reverse", ["id": typoID.lowercasedString, "reason": "typed 500 for 50 on waybill WB-AIR-7"])
        add("stock.dispatch", ["warehouse": "MNL", "item": reversedDispatch.item, "quantity": 50, "destination": "Tacloban airport",
                               "response": responseID, "reference": "WB-AIR-7", "transport": "air", "occurred_at": at(14)])
        add("stock.count", ["warehouse": "GUI", "item": "HSHEMNETRL", "counted": 540, "occurred_at": at(20)])

        // Surge: a roster, deployments through their lifecycle, a few unfilled or cancelled.
        let profiles = ["SHELTER_NFI", "CCCM", "WASH", "IM", "PROTECTION", "LOGISTICS", "HEALTH", "COORDINATION", "GBV", "DTM", "CBI", "MHPSS"]
        let clusterFor = ["SHELTER_NFI": "SHL", "CCCM": "CCM", "WASH": "WSH", "PROTECTION": "PRO", "LOGISTICS": "LOG", "HEALTH": "HEA",
                          "GBV": "PRO-GBV", "MHPSS": "HEA", "DTM": "CCM"]
        let countries = ["PHL", "IDN", "THA", "NPL", "BGD", "FJI", "KEN", "PAK"]
        for p in 0..<26 {
            let profile = profiles[p % profiles.count]
            add("person.register", ["id": "SURGE-\(String(format: "%03d", p + 1))", "name": "Roster member \(p + 1)",
                                    "email": "roster\(p + 1)@example.org", "profiles": [profile, profiles[(p + 5) % profiles.count]],
                                    "home_country": countries[p % countries.count], "occurred_at": at(-200)])
        }
        add("person.unavailability", ["id": "SURGE-004", "from": day(2), "to": day(20), "reason": "leave"])
        for d in 0..<24 {
            let person = "SURGE-\(String(format: "%03d", d + 1))"
            let profile = profiles[d % profiles.count]
            if d == 3 { continue }  // on leave: that request stays unfilled
            let id = "DEP-\(String(format: "%03d", d + 1))"
            let start = 2 + d / 3
            var body: [String: any Sendable] = ["id": id, "person": person, "response": responseID, "profile": profile,
                                                "start": day(start), "end": day(start + 42), "duty_station": ["Tacloban", "Guiuan", "Ormoc"][d % 3],
                                                "occurred_at": at(0.3 + Double(d) * 0.15)]
            if let c = clusterFor[profile] { body["cluster"] = c }
            add("deployment.request", body)
            if d % 11 == 10 {
                add("deployment.cancel", ["id": id, "reason": "the requesting office withdrew the request", "occurred_at": at(0.7 + Double(d) * 0.15)])
                continue
            }
            if d >= 20 { continue }  // still requested: unfilled profiles
            add("deployment.confirm", ["id": id, "occurred_at": at(0.8 + Double(d) * 0.15)])
            if d >= 18 { continue }
            var arrival = start
            if d == 4 {
                // A flight delay moves the start by a day, before arrival: a correction of the request.
                arrival += 1
                add("deployment.amend", ["id": id, "start": day(arrival), "end": day(arrival + 42), "reason": "flight delayed 24 h",
                                         "occurred_at": at(Double(start) - 1)])
            }
            add("deployment.arrive", ["id": id, "occurred_at": at(Double(arrival), hours: 9)])
            if d % 5 == 0 { add("deployment.extend", ["id": id, "end": day(start + 56), "occurred_at": at(Double(start) + 30)]) }
            // One mission ends a week early (its remaining dates are freed), others on their planned end.
            if d == 8 { add("deployment.complete", ["id": id, "occurred_at": at(Double(start) + 35)]) }
            else if d % 7 == 1 { add("deployment.complete", ["id": id, "occurred_at": at(Double(start) + 42)]) }
        }

        // Cluster tasks across clusters, in every state.
        let taskTemplates: [(String, String)] = [
            ("CCM", "Register displaced families at evacuation centre"), ("SHL", "Distribute shelter kits"),
            ("WSH", "Install emergency latrines"), ("WSH", "Water trucking to barangays"), ("HEA", "Mobile clinic rotation"),
            ("PRO", "Protection monitoring visits"), ("PRO-GBV", "Set up women and girls safe space"), ("PRO-CPN", "Family tracing"),
            ("LOG", "Clear access road to Guiuan"), ("FSC", "Food distribution plan"), ("NUT", "MUAC screening of children"),
            ("EDU", "Temporary learning spaces"), ("ERY", "Debris clearance cash-for-work"), ("TEL", "Restore connectivity for responders"),
            ("PRO-HLP", "Land tenure advice for returnees"),
        ]
        let orgs = ["IOM", "UNHCR", "UNICEF", "WFP", "WHO", "Philippine Red Cross", "Plan International", "Save the Children"]
        let pcodes = ["PH0837", "PH0826", "PH0860", "PH08"]
        for t in 0..<48 {
            let template = taskTemplates[t % taskTemplates.count]
            let id = "TASK-\(String(format: "%03d", t + 1))"
            let created = 0.5 + Double(t) * 0.4
            let priority = ["urgent", "high", "normal", "low"][rng.next(4)]
            add("task.create", ["id": id, "response": responseID, "cluster": template.0, "title": "\(template.1) (\(t / taskTemplates.count + 1))",
                                "priority": priority, "due": day(Int(created) + 3 + rng.next(14)), "pcode": pcodes[t % pcodes.count],
                                "lead_org": orgs[t % orgs.count], "occurred_at": at(created)])
            let fate = t % 8
            if fate == 0 { continue }  // still open
            add("task.assign", ["id": id, "assignee": "\(template.0) cluster coordinator", "occurred_at": at(created + 0.2)])
            add("task.start", ["id": id, "occurred_at": at(created + 0.5)])
            switch fate {
            case 1: add("task.block", ["id": id, "reason": "access road cut by landslide", "occurred_at": at(created + 1)])
            case 2, 3: add("task.complete", ["id": id, "occurred_at": at(created + 2 + Double(rng.next(6)))])
            case 4:
                add("task.complete", ["id": id, "occurred_at": at(created + 3)])
                add("task.verify", ["id": id, "occurred_at": at(created + 4)])
            case 5: add("task.cancel", ["id": id, "occurred_at": at(created + 1)])
            case 6:
                add("task.comment", ["id": id, "text": "Partner capacity confirmed", "occurred_at": at(created + 0.7)])
                if t == 6 {
                    add("task.amend", ["id": id, "due": day(Int(created) + 21), "reason": "access restored later than planned",
                                       "occurred_at": at(created + 1)])
                }
            default: break
            }
        }
        return out
    }

    /// Loads the scenario through `service`. Re-loading writes nothing new (idempotency keys).
    /// Returns (commands run, commands that were already loaded).
    public static func load(into service: CoordinationService, actor: String = "demo",
                            progress: (@Sendable (Int, Int) -> Void)? = nil) async throws -> (run: Int, duplicates: Int) {
        let all = lines(actor: actor)
        var duplicates = 0
        for (n, line) in all.enumerated() {
            let ctx = CommandContext(actor: actor, correlationID: "demo-load", source: "demo", idempotencyKey: line.key)
            let result = try await service.execute(name: line.command, json: line.bodyJSON, ctx)
            if result.duplicate { duplicates += 1 }
            progress?(n + 1, all.count)
        }
        return (all.count, duplicates)
    }
}
