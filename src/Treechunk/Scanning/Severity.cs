using System.Globalization;

namespace Treechunk.Scanning;

/// <summary>Severity levels, ordered; Unknown sorts lowest so a threshold never trips on it.</summary>
public enum Severity
{
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

/// <summary>A severity with where it came from: a CVSS vector and its base score, or a distribution's word.</summary>
public sealed record Rating(Severity Severity, double? Score, string? Vector, string Method);

public static class Ratings
{
    public static string Name(Severity s) => s.ToString().ToLowerInvariant();

    /// <summary>Parses a --fail-on value.</summary>
    public static Severity ParseThreshold(string text) => text.ToLowerInvariant() switch
    {
        "negligible" => Severity.Negligible,
        "low" => Severity.Low,
        "medium" => Severity.Medium,
        "high" => Severity.High,
        "critical" => Severity.Critical,
        _ => throw new TreechunkException($"unknown severity '{text}' (expected negligible, low, medium, high or critical)"),
    };

    /// <summary>
    /// The words distributions and databases use: GHSA's LOW..CRITICAL, Red Hat's Important and
    /// Moderate, Debian's tracker urgencies (unimportant, low, medium, high, with ** marks for
    /// guesses), Ubuntu's priorities. Null for "not yet assigned" and the like.
    /// </summary>
    public static Rating? FromWord(string? word, string method)
    {
        if (string.IsNullOrWhiteSpace(word)) return null;
        var w = word.Trim().TrimEnd('*').Trim().ToLowerInvariant();
        Severity? s = w switch
        {
            "critical" => Severity.Critical,
            "high" or "important" => Severity.High,
            "medium" or "moderate" => Severity.Medium,
            "low" => Severity.Low,
            "negligible" or "unimportant" or "minor" or "none" => Severity.Negligible,
            _ => null,
        };
        return s is { } v ? new Rating(v, null, null, method) : null;
    }

    /// <summary>An OSV "severity" item: CVSS v3 vectors are scored here; Ubuntu's own type carries a word.</summary>
    public static Rating? FromOsvSeverity(string? type, string? score)
    {
        if (type == null || score == null) return null;
        if (type == "CVSS_V3" && Cvss3.BaseScore(score) is { } base3)
            return new Rating(Cvss3.SeverityOf(base3), base3, score, score.StartsWith("CVSS:3.0", StringComparison.Ordinal) ? "CVSSv3" : "CVSSv31");
        if (type == "Ubuntu") return FromWord(score, "Ubuntu");
        // CVSS v4 and v2 are kept out rather than guessed: v4 scoring needs its full lookup table.
        return null;
    }

    /// <summary>The rating that counts: the highest known, a scored one before a word of the same level.</summary>
    public static Rating? Highest(IEnumerable<Rating> ratings) =>
        ratings.OrderByDescending(r => r.Severity).ThenByDescending(r => r.Score.HasValue).ThenByDescending(r => r.Score ?? 0).FirstOrDefault();
}

/// <summary>CVSS v3.0/v3.1 base score from a vector string, per the FIRST specification's formulas.</summary>
public static class Cvss3
{
    public static double? BaseScore(string vector)
    {
        var parts = vector.Split('/');
        if (parts.Length < 9 || !(parts[0] is "CVSS:3.0" or "CVSS:3.1")) return null;
        var m = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in parts.Skip(1))
        {
            var kv = p.Split(':');
            if (kv.Length != 2) return null;
            m[kv[0]] = kv[1];
        }
        if (!m.TryGetValue("S", out var scope) || scope is not ("U" or "C")) return null;
        bool changed = scope == "C";
        double? av = m.GetValueOrDefault("AV") switch { "N" => 0.85, "A" => 0.62, "L" => 0.55, "P" => 0.2, _ => null };
        double? ac = m.GetValueOrDefault("AC") switch { "L" => 0.77, "H" => 0.44, _ => null };
        double? pr = m.GetValueOrDefault("PR") switch { "N" => 0.85, "L" => changed ? 0.68 : 0.62, "H" => changed ? 0.5 : 0.27, _ => null };
        double? ui = m.GetValueOrDefault("UI") switch { "N" => 0.85, "R" => 0.62, _ => null };
        static double? Cia(string? v) => v switch { "H" => 0.56, "L" => 0.22, "N" => 0, _ => null };
        var c = Cia(m.GetValueOrDefault("C"));
        var i = Cia(m.GetValueOrDefault("I"));
        var a = Cia(m.GetValueOrDefault("A"));
        if (av is null || ac is null || pr is null || ui is null || c is null || i is null || a is null) return null;
        var iss = 1 - (1 - c.Value) * (1 - i.Value) * (1 - a.Value);
        var impact = changed ? 7.52 * (iss - 0.029) - 3.25 * Math.Pow(iss - 0.02, 15) : 6.42 * iss;
        var exploitability = 8.22 * av.Value * ac.Value * pr.Value * ui.Value;
        if (impact <= 0) return 0;
        var raw = changed ? Math.Min(1.08 * (impact + exploitability), 10) : Math.Min(impact + exploitability, 10);
        return RoundUp(raw);
    }

    /// <summary>CVSS 3.1's Roundup: the smallest one-decimal number not below the input, computed in integers to dodge floating-point error.</summary>
    private static double RoundUp(double x)
    {
        var scaled = (long)Math.Round(x * 100000);
        return scaled % 10000 == 0 ? scaled / 100000.0 : (Math.Floor(scaled / 10000.0) + 1) / 10.0;
    }

    public static Severity SeverityOf(double score) => score switch
    {
        0 => Severity.Negligible,
        < 4 => Severity.Low,
        < 7 => Severity.Medium,
        < 9 => Severity.High,
        _ => Severity.Critical,
    };

    public static string Format(double score) => score.ToString("0.0", CultureInfo.InvariantCulture);
}
