import Events
import Foundation

public enum SurgeVocabulary {
    public static let profiles = ["CCCM", "SHELTER_NFI", "WASH", "DTM", "IM", "PROTECTION", "GBV", "LOGISTICS", "HEALTH",
                                  "MHPSS", "COORDINATION", "CBI"]
    public static let statuses = ["requested", "confirmed", "deployed", "completed", "cancelled"]
}

public enum Clusters {
    /// Global cluster codes, with protection's areas of responsibility.
    public static let all = ["CCM", "SHL", "WSH", "HEA", "PRO", "PRO-GBV", "PRO-CPN", "PRO-HLP", "PRO-MIN", "LOG", "FSC",
                             "NUT", "EDU", "ERY", "TEL"]
}
