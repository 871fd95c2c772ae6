/// Formatting and parsing of one-dimensional PostgreSQL array literals (`{a,"b c",NULL}`).
enum PostgresArrayLiteral {
    /// Formats elements as an array literal. Every non-NULL element is double-quoted with `"`
    /// and `\` escaped, which is valid input for every element type.
    ///
    /// Works on UTF-8 bytes: both escaped characters are ASCII, and no byte of a multi-byte
    /// UTF-8 sequence is ASCII. A worker formats the outputs of every batch it reports, and
    /// appending scalar by scalar took about 4% of its CPU.
    static func format(_ elements: [String?]) -> String {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (position, element) in elements.enumerated() {
            if position > 0 {
                bytes.append(UInt8(ascii: ","))
            }
            guard let element else {
                bytes.append(contentsOf: "NULL".utf8)
                continue
            }
            bytes.append(quote)
            for byte in element.utf8 {
                if byte == quote || byte == backslash {
                    bytes.append(backslash)
                }
                bytes.append(byte)
            }
            bytes.append(quote)
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses array text output into unescaped elements, nil for NULL.
    ///
    /// Multi-dimensional arrays and explicit bounds (`[0:1]={...}`) are rejected.
    static func parse(_ text: Substring) throws -> [String?] {
        let scalars = Array(text.unicodeScalars)
        guard scalars.first == "{", scalars.last == "}" else {
            throw PostgresDecodingFailure(
                "not a one-dimensional array literal; arrays with explicit bounds are not supported")
        }
        var elements: [String?] = []
        var index = 1
        let end = scalars.count - 1
        if index == end {
            return elements
        }
        while true {
            let (element, next) = try parseElement(scalars, from: index, end: end)
            elements.append(element)
            guard next < end else {
                return elements
            }
            guard scalars[next] == "," else {
                throw PostgresDecodingFailure("array literal has no comma between elements")
            }
            index = next + 1
        }
    }

    /// Parses one element starting at `start`; returns it and the index after it.
    private static func parseElement(
        _ scalars: [Unicode.Scalar], from start: Int, end: Int
    ) throws -> (String?, Int) {
        var index = start
        var value = String.UnicodeScalarView()
        if index < end, scalars[index] == "{" {
            throw PostgresDecodingFailure("multi-dimensional arrays are not supported")
        }
        if index < end, scalars[index] == "\"" {
            index += 1
            while index < end, scalars[index] != "\"" {
                if scalars[index] == "\\" {
                    index += 1
                }
                guard index < end else { break }
                value.append(scalars[index])
                index += 1
            }
            guard index < end else {
                throw PostgresDecodingFailure("array literal has an unterminated quoted element")
            }
            return (String(value), index + 1)
        }
        while index < end, scalars[index] != "," {
            if scalars[index] == "\\", index + 1 < end {
                index += 1
            }
            value.append(scalars[index])
            index += 1
        }
        let element = String(value).trimmingWhitespace()
        if element.uppercased() == "NULL" {
            return (nil, index)
        }
        return (element, index)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace {
            scalars.removeFirst()
        }
        while let last = scalars.last, last.isWhitespace {
            scalars.removeLast()
        }
        return String(scalars)
    }
}
