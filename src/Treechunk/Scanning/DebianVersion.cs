using System.Text;

namespace Treechunk.Scanning;

/// <summary>
/// Debian package version ordering as dpkg decides it (deb-version(7)): <c>[epoch:]upstream[-revision]</c>,
/// checked against <c>dpkg --compare-versions</c>. A scanner that says "fixed in 1:2.3-4" is only
/// right if it orders versions the way the package manager that installed them does.
/// </summary>
public static class DebianVersion
{
    /// <summary>
    /// Orders two versions: negative, zero or positive. Never throws: a string dpkg would refuse
    /// still gets a fixed place, so a sort over untrusted data cannot fail half way.
    /// </summary>
    public static int Compare(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        // dpkg --compare-versions takes an empty argument as "no version": below every real one,
        // equal only to another empty one (it never reaches the string comparison).
        if (a.Length == 0 || b.Length == 0) return (a.Length != 0 ? 1 : 0) - (b.Length != 0 ? 1 : 0);
        var pa = Lenient(a);
        var pb = Lenient(b);
        if (pa.Epoch != pb.Epoch) return pa.Epoch < pb.Epoch ? -1 : 1;
        var rc = ComparePart(pa.Upstream, pb.Upstream);
        return rc != 0 ? rc : ComparePart(pa.Revision, pb.Revision);
    }

    /// <summary>
    /// Splits a version the way dpkg's parser does, failing exactly where dpkg reports an error
    /// rather than a warning: empty or blank, embedded blanks, an epoch that is empty, not a number,
    /// negative or above 2147483647, nothing after the epoch's colon, an empty upstream part or an
    /// empty revision after a trailing hyphen. Letters first or odd characters are only warnings in
    /// dpkg, and such versions do get installed, so they parse.
    /// </summary>
    public static bool TryParse(string s, out (int Epoch, string Upstream, string Revision) parts)
    {
        ArgumentNullException.ThrowIfNull(s);
        parts = default;
        // Only spaces and tabs are trimmed: dpkg's notion of blank, not .NET's.
        int start = 0, end = s.Length;
        while (start < end && IsBlank(s[start])) start++;
        while (end > start && IsBlank(s[end - 1])) end--;
        if (start == end) return false;
        for (var i = start; i < end; i++) if (IsBlank(s[i])) return false;

        var epoch = 0;
        var colon = s.IndexOf(':', start, end - start);
        if (colon >= 0)
        {
            if (!ParseEpoch(s.AsSpan(start, colon - start), out epoch)) return false;
            start = colon + 1;
            if (start == end) return false;
        }
        var body = s[start..end];
        var hyphen = body.LastIndexOf('-');
        var upstream = hyphen >= 0 ? body[..hyphen] : body;
        var revision = hyphen >= 0 ? body[(hyphen + 1)..] : "";
        if (hyphen >= 0 && revision.Length == 0) return false;
        if (upstream.Length == 0) return false;
        parts = (epoch, upstream, revision);
        return true;
    }

    private static bool IsBlank(char c) => c is ' ' or '\t';

    // dpkg reads the epoch with strtol, so what it takes is what strtol takes: leading C-locale
    // white space and a sign are allowed ("+1:" is epoch 1, "-0:" is epoch 0), then one or more
    // digits that must reach the colon exactly.
    private static bool ParseEpoch(ReadOnlySpan<char> text, out int epoch)
    {
        epoch = 0;
        var i = 0;
        while (i < text.Length && text[i] is ' ' or '\t' or '\n' or '\v' or '\f' or '\r') i++;
        var negative = false;
        if (i < text.Length && text[i] is '+' or '-') negative = text[i++] == '-';
        if (i == text.Length || !char.IsAsciiDigit(text[i])) return false;
        long value = 0;
        for (; i < text.Length; i++)
        {
            if (!char.IsAsciiDigit(text[i])) return false;
            value = Math.Min(value * 10 + (text[i] - '0'), (long)int.MaxValue + 1);
        }
        if (negative && value != 0) return false;
        if (value > int.MaxValue) return false;
        epoch = (int)value;
        return true;
    }

    // For strings dpkg refuses there is no dpkg answer to match; keeping the whole text as the
    // upstream part at epoch 0 gives them a stable place without inventing a split.
    private static (int Epoch, string Upstream, string Revision) Lenient(string s) =>
        TryParse(s, out var parts) ? parts : (0, s, "");

    /// <summary>
    /// dpkg's comparison of one upstream or revision part. Runs of non-digits compare character by
    /// character, runs of digits compare as numbers of any length, alternating until both end.
    /// </summary>
    internal static int ComparePart(string a, string b)
    {
        // dpkg compares C bytes, so non-ASCII text has to be compared as its UTF-8 bytes, and a C
        // string stops at its first NUL.
        var x = Bytes(a);
        var y = Bytes(b);
        int i = 0, j = 0;
        while (i < x.Length || j < y.Length)
        {
            while ((i < x.Length && !IsDigit(x[i])) || (j < y.Length && !IsDigit(y[j])))
            {
                var rx = Rank(x, i);
                var ry = Rank(y, j);
                if (rx != ry) return rx < ry ? -1 : 1;
                // A digit or the end ranks like nothing here; it is only stepped over on the side
                // still in its non-digit run.
                if (i < x.Length && !IsDigit(x[i])) i++;
                if (j < y.Length && !IsDigit(y[j])) j++;
            }
            while (i < x.Length && x[i] == '0') i++;
            while (j < y.Length && y[j] == '0') j++;
            int ni = i, nj = j;
            while (ni < x.Length && IsDigit(x[ni])) ni++;
            while (nj < y.Length && IsDigit(y[nj])) nj++;
            // Without leading zeros the longer run is the bigger number; equal lengths compare
            // digit by digit, so no number ever has to fit in a machine integer.
            if (ni - i != nj - j) return ni - i < nj - j ? -1 : 1;
            for (; i < ni; i++, j++)
                if (x[i] != y[j]) return x[i] < y[j] ? -1 : 1;
        }
        return 0;
    }

    private static bool IsDigit(byte c) => c is >= (byte)'0' and <= (byte)'9';

    // Where one character sorts in a non-digit run: '~' below the end of the part (so "1.0~rc1"
    // is before "1.0"), letters next in ASCII order, everything else after every letter.
    // Outside ASCII dpkg's answer depends on whether the C compiler's char is signed, which differs
    // between Debian architectures; this follows the signed char of amd64 and i386, where such a
    // byte lands after the letters but before ASCII punctuation.
    private static int Rank(byte[] s, int i)
    {
        if (i >= s.Length) return 0;
        var c = s[i];
        if (IsDigit(c)) return 0;
        if (c == '~') return -1;
        if (c is >= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z') return c;
        return c >= 0x80 ? c : c + 256;
    }

    private static byte[] Bytes(string s)
    {
        var nul = s.IndexOf('\0');
        return Encoding.UTF8.GetBytes(nul >= 0 ? s[..nul] : s);
    }
}
