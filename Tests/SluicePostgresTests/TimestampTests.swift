import Foundation
@testable import SluicePostgres
import Testing

@Suite struct TimestampTests {
    @Test func formatUsesUTCAndMicroseconds() {
        let date = Date(timeIntervalSince1970: 1_796_413_991.123456)
        #expect(date.postgresText == "2026-12-04T19:53:11.123456Z")
        #expect(Date(timeIntervalSince1970: 0).postgresText == "1970-01-01T00:00:00.000000Z")
        #expect(Date(timeIntervalSince1970: -0.5).postgresText == "1969-12-31T23:59:59.500000Z")
        #expect(Date.distantFuture.postgresText == "infinity")
        #expect(Date.distantPast.postgresText == "-infinity")
    }

    @Test func parseAcceptsOffsetsAndFractions() throws {
        let cases: [(String, Double)] = [
            ("2026-12-04 19:53:11+00", 1_796_413_991),
            ("2026-12-04 19:53:11.1+00", 1_796_413_991.1),
            ("2026-12-04 21:53:11+02", 1_796_413_991),
            ("2026-12-04 14:23:11-05:30", 1_796_413_991),
            ("2026-12-04T19:53:11Z", 1_796_413_991),
            ("2026-12-04", 1_796_342_400),
            ("1969-12-31 23:59:59.5+00", -0.5),
        ]
        for (text, seconds) in cases {
            #expect(try PostgresTimestamp.parse(text[...]).timeIntervalSince1970 == seconds, "\(text)")
        }
    }

    @Test func parseRejectsMalformedText() {
        for text in ["", "2026-13-01 00:00:00+00", "12/04/2026", "2026-12-04 19:53", "2026-12-04 19:53:11+00 junk"] {
            #expect(throws: PostgresDecodingFailure.self, "\(text)") { try PostgresTimestamp.parse(text[...]) }
        }
    }

    @Test func calendarConversionIsInverse() {
        for days in stride(from: Int64(-800_000), through: 800_000, by: 997) {
            let (year, month, day) = PostgresTimestamp.civilDate(daysSinceEpoch: days)
            #expect(PostgresTimestamp.daysSinceEpoch(year: year, month: month, day: day) == days)
        }
    }
}
