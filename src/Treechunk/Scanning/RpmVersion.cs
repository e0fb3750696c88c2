namespace Treechunk.Scanning;

/// <summary>
/// RPM version ordering as rpm 4.15 and later decide it, checked against rpm's own
/// <c>rpm.vercmp</c>: <see cref="CompareSegment"/> is the comparison of one version or release
/// string, <see cref="CompareEvr"/> that of a whole <c>[epoch:]version[-release]</c>.
/// </summary>
public static class RpmVersion
{
    /// <summary>
    /// Orders two version (or release) strings: negative, zero or positive. They are read as runs
    /// of ASCII digits and runs of ASCII letters; every other character only separates runs, except
    /// '~', which sorts before anything (even the end: "1.0~rc1" is before "1.0"), and '^', which
    /// sorts after the end but before anything else (a snapshot "1.0^20240101" is after "1.0" and
    /// before "1.0.1").
    /// </summary>
    public static int CompareSegment(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        // rpm sees C strings: what follows a NUL is not there.
        var x = Truncate(a);
        var y = Truncate(b);
        int i = 0, j = 0;
        while (i < x.Length || j < y.Length)
        {
            while (i < x.Length && IsSeparator(x[i])) i++;
            while (j < y.Length && IsSeparator(y[j])) j++;
            var cx = i < x.Length ? x[i] : '\0';
            var cy = j < y.Length ? y[j] : '\0';

            if (cx == '~' || cy == '~')
            {
                if (cx != cy) return cx == '~' ? -1 : 1;
                i++; j++;
                continue;
            }
            if (cx == '^' || cy == '^')
            {
                // The end of a string is below a caret; any run is above it.
                if (cx == '\0') return -1;
                if (cy == '\0') return 1;
                if (cx != cy) return cx == '^' ? -1 : 1;
                i++; j++;
                continue;
            }
            // Once either side is used up, the rest decides below, not run by run: this is why
            // trailing separators ("1.0." against "1.0") make no difference.
            if (cx == '\0' || cy == '\0') break;

            var numeric = char.IsAsciiDigit(cx);
            int ei = i, ej = j;
            while (ei < x.Length && InRun(x[ei], numeric)) ei++;
            while (ej < y.Length && InRun(y[ej], numeric)) ej++;
            // A number against letters: rpm calls the number newer ("1.0" after "1.a").
            if (ej == j) return numeric ? 1 : -1;

            int si = i, sj = j;
            if (numeric)
            {
                // Numbers of any length: without leading zeros the longer one is bigger.
                while (si < ei && x[si] == '0') si++;
                while (sj < ej && y[sj] == '0') sj++;
                if (ei - si != ej - sj) return ei - si < ej - sj ? -1 : 1;
            }
            var rc = x.AsSpan(si, ei - si).SequenceCompareTo(y.AsSpan(sj, ej - sj));
            if (rc != 0) return rc < 0 ? -1 : 1;
            i = ei; j = ej;
        }
        // All runs matched; whichever still has characters (separators count here) is newer.
        var leftX = i < x.Length;
        var leftY = j < y.Length;
        return leftX == leftY ? 0 : leftX ? 1 : -1;
    }

    /// <summary>
    /// Orders two <c>[epoch:]version[-release]</c> strings as <c>rpm.vercmp</c> in rpm 4.18 does:
    /// epoch (missing is 0), then version, then release, each with <see cref="CompareSegment"/>.
    /// When only one side has a release, and everything before it is equal, that side is the
    /// newer one, whatever the release says ("1.0-0" and even "1.0-~" are after "1.0"). That is
    /// not rpm's dependency matching, where "Requires: foo >= 1.0" is met by any release of 1.0.
    /// </summary>
    public static int CompareEvr(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var (ea, va, ra) = SplitEvr(Truncate(a));
        var (eb, vb, rb) = SplitEvr(Truncate(b));
        var rc = CompareSegment(ea, eb);
        if (rc != 0) return rc;
        rc = CompareSegment(va, vb);
        if (rc != 0) return rc;
        if (ra != null && rb != null) return CompareSegment(ra, rb);
        return (ra != null ? 1 : 0) - (rb != null ? 1 : 0);
    }

    /// <summary>
    /// Splits <c>[epoch:]version[-release]</c> the way rpm does: an epoch only when the text starts
    /// with digits (possibly none) followed by ':', the release after the last '-'.
    /// </summary>
    private static (string Epoch, string Version, string? Release) SplitEvr(string evr)
    {
        var digits = 0;
        while (digits < evr.Length && char.IsAsciiDigit(evr[digits])) digits++;
        var epoch = "0";
        var rest = evr;
        // "a:1" has no epoch: its colon is just a separator inside the version.
        if (digits < evr.Length && evr[digits] == ':')
        {
            if (digits > 0) epoch = evr[..digits];
            rest = evr[(digits + 1)..];
        }
        var hyphen = rest.LastIndexOf('-');
        return hyphen < 0 ? (epoch, rest, null) : (epoch, rest[..hyphen], rest[(hyphen + 1)..]);
    }

    private static bool InRun(char c, bool numeric) => numeric ? char.IsAsciiDigit(c) : char.IsAsciiLetter(c);

    private static bool IsSeparator(char c) => !char.IsAsciiLetterOrDigit(c) && c != '~' && c != '^';

    private static string Truncate(string s)
    {
        var nul = s.IndexOf('\0');
        return nul >= 0 ? s[..nul] : s;
    }
}
