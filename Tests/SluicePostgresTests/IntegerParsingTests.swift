import Testing

@testable import SluicePostgres

/// parseInteger on UTF-8 bytes, which must accept exactly what `T(text, radix: 10)` accepts.
@Suite struct IntegerParsingTests {
    static let texts = [
        "0", "-0", "+0", "7", "+42", "-42", "007", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "-9223372036854775809", "99999999999999999999", "2147483647",
        "-2147483648", "2147483648", "", "-", "+", "--1", "+-1", "1-", "12a", " 1", "1 ", "1.0", "1e3",
        "٣",
    ]

    static func parse<T: FixedWidthInteger>(_ text: String, as type: T.Type) -> T? {
        Array(text.utf8).withUnsafeBytes { try? parseInteger($0, as: T.self) }
    }

    @Test(arguments: texts) func int64MatchesStandardParser(text: String) {
        #expect(Self.parse(text, as: Int64.self) == Int64(text, radix: 10))
    }

    @Test(arguments: texts) func int32MatchesStandardParser(text: String) {
        #expect(Self.parse(text, as: Int32.self) == Int32(text, radix: 10))
    }

    @Test func failureNamesType() throws {
        let failure = Array("x".utf8).withUnsafeBytes { bytes in
            #expect(throws: PostgresDecodingFailure.self) {
                try parseInteger(bytes, as: Int32.self)
            }
        }
        #expect(failure?.reason.contains("Int32") == true)
    }
}
