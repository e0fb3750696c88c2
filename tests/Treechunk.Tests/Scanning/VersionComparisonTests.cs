using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using FsCheck;
using FsCheck.Fluent;
using Treechunk.Scanning;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Scanning;

/// <summary>
/// Version ordering against the package managers themselves: dpkg --compare-versions for Debian,
/// rpm's own rpm.vercmp for RPM. Many pairs go to each peer in a handful of processes, since
/// thousands of separate test cases would spend their time starting programs.
/// </summary>
public partial class VersionComparisonTests
{
    // Separates the two versions of a pair on a line: not a character versions use, and not white
    // space, so bash's read keeps empty and blank fields as they are.
    private const char Sep = '\x1f';

    // Hand-picked pairs where an implementation usually goes wrong.
    private static readonly (string A, string B)[] DebianEdgeCases =
    [
        ("1:0.9", "0.10"), ("0:1.0", "1.0"), ("00:1.0", "0:1.0"), ("1:1.0", "2:0.1"), ("+1:1.0", "1:1.0"),
        ("2147483647:1", "1"), ("1:1:1", "1:1.1"), ("1:1-1:2", "1:1-1.2"),
        ("1.0~", "1.0"), ("1.0~~", "1.0~"), ("1.0~~a", "1.0~"), ("1.0~rc1", "1.0"), ("1.0~rc1", "1.0~beta2"),
        ("1~", "1"), ("~", "0"), ("~~", "~"), ("1.0-1~bpo1", "1.0-1"), ("1.0-~", "1.0"),
        ("1.0+", "1.0"), ("1.0+1", "1.0.1"), ("1.0.", "1.0"), ("1.0", "1.0."), ("1..0", "1.0"), ("1.0+dfsg", "1.0.dfsg"),
        ("1.001", "1.1"), ("1.01", "1.1"), ("1.000", "1.0"), ("1.0", "1.00"), ("010", "10"), ("0", "00"),
        ("1.0-1", "1.0"), ("1.0-0", "1.0"), ("1.0-00", "1.0"), ("1.0-0.1", "1.0"), ("1.0-1", "1.0-1.0"),
        ("99999999999999999999999", "99999999999999999999998"), ("1.99999999999999999999", "1.100000000000000000000"),
        ("1.18446744073709551616", "1.18446744073709551615"), ("00000000000000000000001", "1"),
        ("1.0a", "1.0+"), ("1.0a", "1.0"), ("1.0a", "1.0A"), ("1.0Z", "1.0a"), ("1.0a", "1.0~"), ("1.0+", "1.0-"),
        ("1.0+a", "1.0.a"), ("1.0:a", "1.0.a"), ("1.0a1", "1.0a"), ("1.0b", "1.0a9"),
        ("1.2-3-4", "1.2-3.4"), ("1.2-3-4", "1.2-3"), ("1-2-3-4", "1-2-3.4"), ("1.2-3-4", "1.2.3-4"),
        ("abc", "1"), ("a1", "b1"), ("1_0", "1.0"), ("1é", "1+"), ("1é", "1a"), ("1é", "1ê"),
        (" 1.0 ", "1.0"), ("\t1.0", "1.0"),
        ("", "0"), ("", "1.0"), ("", ""), ("", "~"),
        ("1.0", "1.0"), ("1:1.0-1", "1:1.0-1"),
    ];

    // dpkg refuses these (exit 2, "bad syntax"); TryParse has to refuse the same ones.
    private static readonly string[] DebianRejected =
    [
        " ", "1.0 x", "a:1", ":1", "1:", "1:-1", "1.0-", "1.0-a-", " -1:1", "2147483648:1", "99999999999999999999:1",
        "1 :2", "x1:2",
    ];

    [Fact]
    public void Debian_order_matches_dpkg_for_real_versions_and_edge_cases()
    {
        Tools.Require("dpkg");
        Tools.Require("bash");
        var tree = Fixtures.DebianTree;
        var (installed, history) = RealDebianVersions(tree);
        Assert.True(installed.Count >= 50, $"only {installed.Count} versions in the status file");

        var real = installed.Concat(history).Distinct().Order(StringComparer.Ordinal).ToList();
        var rng = new Random(20240607);
        var realPairs = new List<(string, string)>();
        // Neighbours in sorted order share long prefixes ("1.2-1" and "1.2-1+deb12u1"), where the
        // interesting decisions are; a random sample mixes everything else.
        for (var k = 0; k + 1 < real.Count; k++) realPairs.Add(Flip(rng, real[k], real[k + 1]));
        var inst = installed.Order(StringComparer.Ordinal).ToList();
        for (var k = 0; k + 2 < inst.Count; k++) realPairs.Add(Flip(rng, inst[k], inst[k + 2]));
        for (var k = 0; k < 600; k++) realPairs.Add((real[rng.Next(real.Count)], real[rng.Next(real.Count)]));
        // The same real versions, nudged the ways packagers do (backports, rebuilds, pre-releases).
        var derived = new List<(string, string)>();
        foreach (var v in inst)
        {
            Assert.True(DebianVersion.TryParse(v, out var p), $"installed version {v} does not parse");
            var noEpoch = p.Revision.Length > 0 ? $"{p.Upstream}-{p.Revision}" : p.Upstream;
            derived.Add((v, v + "~"));
            derived.Add((v + "~", v + "~~"));
            derived.Add((v, v + "+b1"));
            derived.Add((v, v + ".0"));
            derived.Add((v, $"{p.Epoch + 1}:{noEpoch}"));
            derived.Add((v, p.Upstream));
            derived.Add((p.Upstream, p.Upstream + "-0"));
            if (p.Revision.Length > 0) derived.Add((v, $"{p.Upstream}~bpo12+1-{p.Revision}"));
        }
        Assert.True(realPairs.Count >= 1000, $"only {realPairs.Count} pairs of real versions");

        var pairs = realPairs.Concat(derived).Concat(DebianEdgeCases).Concat(DebianRejected.Select(r => (r, "1.0"))).ToList();
        Assert.DoesNotContain(pairs, p => p.Item1.StartsWith('-') || p.Item2.StartsWith('-')); // dpkg would take them for options
        var answers = AskDpkg(pairs);

        var disagreements = new List<string>();
        for (var k = 0; k < pairs.Count; k++)
        {
            var (a, b) = pairs[k];
            var dpkg = answers[k];
            var bothParse = (a.Length == 0 || DebianVersion.TryParse(a, out _)) && (b.Length == 0 || DebianVersion.TryParse(b, out _));
            if (dpkg == "E")
            {
                if (bothParse) disagreements.Add($"dpkg refuses [{a}] or [{b}], TryParse accepts both");
                continue;
            }
            if (!bothParse) disagreements.Add($"dpkg accepts [{a}] and [{b}], TryParse refuses one");
            var ours = Math.Sign(DebianVersion.Compare(a, b));
            if (ours.ToString() != dpkg) disagreements.Add($"[{a}] vs [{b}]: dpkg {dpkg}, ours {ours}");
        }
        Assert.True(disagreements.Count == 0,
            $"{disagreements.Count} of {pairs.Count} pairs disagree with dpkg:\n{string.Join("\n", disagreements.Take(30))}");
        // Every refused string really was refused by dpkg, not just by us.
        foreach (var r in DebianRejected)
            Assert.Equal("E", answers[pairs.IndexOf((r, "1.0"))]);
    }

    [Fact]
    public void Debian_parts_split_at_the_first_colon_and_the_last_hyphen()
    {
        Assert.True(DebianVersion.TryParse("1:2.3-4-5", out var p));
        Assert.Equal((1, "2.3-4", "5"), p);
        Assert.True(DebianVersion.TryParse("2.3", out p));
        Assert.Equal((0, "2.3", ""), p);
        Assert.True(DebianVersion.TryParse("  7:1:2  ", out p));
        Assert.Equal((7, "1:2", ""), p);
        Assert.True(DebianVersion.TryParse("abc", out p)); // only a warning in dpkg
        Assert.False(DebianVersion.TryParse("", out _));
        foreach (var r in DebianRejected) Assert.False(DebianVersion.TryParse(r, out _), r);
    }

    // Pairs for rpmvercmp on its own: strings without '-' and without a leading "digits:", so rpm.vercmp
    // has no epoch or release to split off and compares them whole.
    private static readonly (string A, string B)[] RpmSegmentEdgeCases =
    [
        ("1.0", "1.0"), ("1.0", "1.0.0"), ("1.0", "1.0."), ("1.0", "1_0"), ("1.0", "1+0"), ("1..0", "1.0"), ("1.0", ".1.0"),
        ("1.0~rc1", "1.0"), ("1.0~rc1", "1.0~rc2"), ("1.0~~", "1.0~"), ("1.0~", "1.0~a"), ("~", "_"), ("~1", "~"),
        ("1.0^", "1.0"), ("1.0^1", "1.0"), ("1.0^1", "1.0.1"), ("1.0^1", "1.0a"), ("1.0^~", "1.0^"), ("1.0~^", "1.0~"),
        ("1.0^^", "1.0^"), ("1.0^a", "1.0^1"), ("^", "_"), ("1.0^1", "1.0~1"), ("1.0^.1", "1.0^1"),
        ("1.0a", "1.0"), ("1.0a", "1.0.1"), ("1.a", "1.1"), ("a", "1"), ("abc", "abd"), ("A", "a"), ("1.0a", "1.0A"),
        ("1.001", "1.1"), ("1.010", "1.9"), ("0", "00"), ("000001", "1"),
        ("99999999999999999999999", "99999999999999999999998"), ("1.18446744073709551616", "1.18446744073709551615"),
        ("2.0.1a", "2.0.1"), ("2.0.1a", "2.0.1b"), ("5.5p1", "5.5p2"), ("5.5p10", "5.5p9"), ("10xyz", "10.1xyz"),
        ("xyz10", "xyz10.1"), ("xyz.4", "xyz.4"), ("1b.fc17", "1b.fc17"), ("1.0a1", "1.0a"), ("1é", "1"), ("1é2", "1.2"),
        ("a:1", "a.1"), ("_1", "1"), ("1_", "1"),
    ];

    private static readonly (string A, string B)[] RpmEvrEdgeCases =
    [
        ("1:1.0-1", "1.0-1"), ("0:1.0-1", "1.0-1"), ("01:1.0", "1:1.0"), (":1.0", "1.0"), ("1:1.0", "0:2.0"),
        ("1.0-1", "1.0"), ("1.0-0", "1.0"), ("1.0-", "1.0"), ("1.0-~", "1.0"), ("1.0-^", "1.0"), ("1.0-", "1.0-0"),
        ("1.0-1", "1.0-1"), ("1.0-2", "1.0-10"), ("1.0-1.fc40", "1.0-1.fc39"), ("1.0-1-2", "1.0-1.2"), ("1.0-1-2", "1.0.1-2"),
        ("1:", "1:0"), ("1:-2", "1:-3"), ("1-2:3", "1-2.3"), ("x:1", "1"), ("1:1:1", "1:1.1"), ("2:1~rc1-1", "2:1-1"),
        ("1.0^git1-1", "1.0-1"), ("1.0~git1-1", "1.0-1"), ("99999999999999999999:1", "1:1"),
    ];

    [Fact]
    public void Rpm_order_matches_rpm_vercmp()
    {
        Tools.Require("rpm");
        var rng = new Random(4180);
        const string alphabet = "0123456789.~^+_ab";
        var segmentPairs = RpmSegmentEdgeCases.ToList();
        for (var k = 0; k < 600; k++) segmentPairs.Add((RandomString(rng, alphabet, 1, 8), RandomString(rng, alphabet, 1, 8)));
        // Independent random strings mostly differ in their first run; small edits of one string
        // reach the later runs, the separators and the '~' and '^' rules.
        for (var k = 0; k < 400; k++)
        {
            var s = RandomString(rng, alphabet, 1, 10);
            segmentPairs.Add(Flip(rng, s, Mutate(rng, s, alphabet)));
        }

        const string evrAlphabet = "0123456789.~^+_ab:-";
        var evrPairs = RpmEvrEdgeCases.ToList();
        for (var k = 0; k < 300; k++) evrPairs.Add((RandomString(rng, evrAlphabet, 1, 10), RandomString(rng, evrAlphabet, 1, 10)));
        for (var k = 0; k < 300; k++)
        {
            var s = RandomEvr(rng);
            evrPairs.Add(Flip(rng, s, rng.Next(3) == 0 ? RandomEvr(rng) : Mutate(rng, s, evrAlphabet)));
        }

        var answers = AskRpm([.. segmentPairs, .. evrPairs, ("", "1")]);
        Assert.Equal("E", answers[^1]); // rpm.vercmp refuses an empty version; CompareEvr does not throw

        var disagreements = new List<string>();
        for (var k = 0; k < segmentPairs.Count; k++)
        {
            var (a, b) = segmentPairs[k];
            var seg = Math.Sign(RpmVersion.CompareSegment(a, b));
            var evr = Math.Sign(RpmVersion.CompareEvr(a, b));
            if (seg.ToString() != answers[k] || evr != seg) disagreements.Add($"segment [{a}] vs [{b}]: rpm {answers[k]}, CompareSegment {seg}, CompareEvr {evr}");
        }
        for (var k = 0; k < evrPairs.Count; k++)
        {
            var (a, b) = evrPairs[k];
            var rpm = answers[segmentPairs.Count + k];
            var ours = a.Length == 0 || b.Length == 0 ? "E" : Math.Sign(RpmVersion.CompareEvr(a, b)).ToString();
            if (ours != rpm) disagreements.Add($"EVR [{a}] vs [{b}]: rpm {rpm}, CompareEvr {ours}");
        }
        Assert.True(disagreements.Count == 0,
            $"{disagreements.Count} of {segmentPairs.Count + evrPairs.Count} pairs disagree with rpm:\n{string.Join("\n", disagreements.Take(30))}");
        Assert.True(segmentPairs.Count >= 1000 && evrPairs.Count >= 600, $"{segmentPairs.Count} segment and {evrPairs.Count} EVR pairs");
    }

    [Fact]
    public void Rpm_release_only_on_one_side_makes_that_side_newer()
    {
        // rpm 4.18's rpm.vercmp says so (checked above against rpm); spelt out because the
        // dependency-range rule ("any release matches") is the one people remember.
        Assert.True(RpmVersion.CompareEvr("1.0-1", "1.0") > 0);
        Assert.True(RpmVersion.CompareEvr("1.0-~", "1.0") > 0);
        Assert.True(RpmVersion.CompareEvr("1.0", "1.0-0") < 0);
        Assert.Equal(0, RpmVersion.CompareEvr("0:1.0", "1.0"));
        Assert.True(RpmVersion.CompareEvr("1.1", "1.0-9") > 0);
    }

    // Strings from the characters that carry meaning in either format, so generated pairs hit the
    // interesting rules instead of being decided by their first character.
    private static readonly Gen<string> VersionText =
        Gen.Elements("0", "1", "9", "00", "10", ".", "~", "^", "+", "-", ":", "_", "a", "b", "Z", "é")
            .ArrayOf().Select(parts => string.Concat(parts));

    [FsCheck.Xunit.Property(MaxTest = 500)]
    public Property Debian_compare_is_reflexive_and_antisymmetric() =>
        Prop.ForAll(VersionText.ToArbitrary(), VersionText.ToArbitrary(), (a, b) =>
            DebianVersion.Compare(a, a) == 0 && Math.Sign(DebianVersion.Compare(a, b)) == -Math.Sign(DebianVersion.Compare(b, a)));

    [FsCheck.Xunit.Property(MaxTest = 500)]
    public Property Rpm_compare_is_reflexive_and_antisymmetric() =>
        Prop.ForAll(VersionText.ToArbitrary(), VersionText.ToArbitrary(), (a, b) =>
            RpmVersion.CompareSegment(a, a) == 0 && RpmVersion.CompareEvr(a, a) == 0
            && Math.Sign(RpmVersion.CompareSegment(a, b)) == -Math.Sign(RpmVersion.CompareSegment(b, a))
            && Math.Sign(RpmVersion.CompareEvr(a, b)) == -Math.Sign(RpmVersion.CompareEvr(b, a)));

    [FsCheck.Xunit.Property(MaxTest = 300)]
    public Property Sorting_is_consistent_for_both_formats() =>
        // Transitivity is what a sort relies on: a sorted list has every pair in order.
        Prop.ForAll(VersionText.ArrayOf().ToArbitrary(), items =>
        {
            var deb = items.Order(Comparer<string>.Create(DebianVersion.Compare)).ToArray();
            var rpm = items.Order(Comparer<string>.Create(RpmVersion.CompareEvr)).ToArray();
            for (var i = 0; i < items.Length; i++)
                for (var j = i + 1; j < items.Length; j++)
                    if (DebianVersion.Compare(deb[i], deb[j]) > 0 || RpmVersion.CompareEvr(rpm[i], rpm[j]) > 0) return false;
            return true;
        });

    private static (string, string) Flip(Random rng, string a, string b) => rng.Next(2) == 0 ? (a, b) : (b, a);

    private static string RandomString(Random rng, string alphabet, int min, int max)
    {
        var chars = new char[rng.Next(min, max + 1)];
        for (var i = 0; i < chars.Length; i++) chars[i] = alphabet[rng.Next(alphabet.Length)];
        return new string(chars);
    }

    private static string RandomEvr(Random rng)
    {
        var sb = new StringBuilder();
        if (rng.Next(3) == 0) sb.Append(rng.Next(3)).Append(':');
        sb.Append(rng.Next(4)).Append('.').Append(rng.Next(12));
        if (rng.Next(2) == 0) sb.Append(rng.Next(3) switch { 0 => "~rc", 1 => "^git", _ => "." }).Append(rng.Next(3));
        if (rng.Next(3) != 0) sb.Append('-').Append(rng.Next(3)).Append(rng.Next(2) == 0 ? ".fc40" : "");
        return sb.ToString();
    }

    private static string Mutate(Random rng, string s, string alphabet)
    {
        var i = rng.Next(s.Length + 1);
        var c = alphabet[rng.Next(alphabet.Length)];
        var mutated = rng.Next(3) switch
        {
            0 => s.Insert(i, c.ToString()),
            1 when i < s.Length => s.Remove(i, 1).Insert(i, c.ToString()),
            _ => i < s.Length && s.Length > 1 ? s.Remove(i, 1) : s + c,
        };
        return mutated;
    }

    [GeneratedRegex(@"^[A-Za-z0-9][^ ]* \(([^()\s]+)\)")]
    private static partial Regex ChangelogHeader();

    [GeneratedRegex(@"^Source: \S+ \(([^)]+)\)$")]
    private static partial Regex SourceWithVersion();

    /// <summary>The versions of the installed packages and of their sources, and every version in the packages' Debian changelogs.</summary>
    private static (List<string> Installed, List<string> History) RealDebianVersions(string tree)
    {
        var installed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(Path.Join(tree, "var/lib/dpkg/status")))
        {
            if (line.StartsWith("Version: ", StringComparison.Ordinal)) installed.Add(line["Version: ".Length..].Trim());
            else if (SourceWithVersion().Match(line) is { Success: true } m) installed.Add(m.Groups[1].Value);
        }
        var history = new HashSet<string>(StringComparer.Ordinal);
        foreach (var log in Directory.EnumerateFiles(Path.Join(tree, "usr/share/doc"), "changelog.Debian.gz", SearchOption.AllDirectories))
        {
            using var reader = new StreamReader(new GZipStream(File.OpenRead(log), CompressionMode.Decompress));
            while (reader.ReadLine() is { } line)
                if (ChangelogHeader().Match(line) is { Success: true } m && !m.Groups[1].Value.Contains(Sep) && !m.Groups[1].Value.StartsWith('-'))
                    history.Add(m.Groups[1].Value);
        }
        history.ExceptWith(installed);
        return (installed.ToList(), history.ToList());
    }

    // One dpkg call per pair is unavoidable (it has no batch mode), but the loop runs in bash, two
    // halves at once, so the cost is dpkg's start-up and nothing more.
    private const string DpkgLoop = """
        while IFS=$'\x1f' read -r a b; do
          dpkg --compare-versions "$a" lt "$b" 2>/dev/null; rc=$?
          if [ $rc -eq 0 ]; then echo -1; continue; fi
          if [ $rc -ne 1 ]; then echo E; continue; fi
          dpkg --compare-versions "$a" eq "$b" 2>/dev/null; rc=$?
          if [ $rc -eq 0 ]; then echo 0; elif [ $rc -eq 1 ]; then echo 1; else echo E; fi
        done < "$1"
        """;

    private static List<string> AskDpkg(List<(string, string)> pairs)
    {
        using var dir = new TempDir();
        var half = pairs.Count / 2;
        var chunks = new[] { pairs[..half], pairs[half..] };
        var runs = chunks.Select((chunk, n) =>
        {
            var file = Path.Join(dir.Path, $"pairs{n}");
            File.WriteAllText(file, string.Concat(chunk.Select(p => $"{p.Item1}{Sep}{p.Item2}\n")), new UTF8Encoding(false));
            return Task.Run(() => Proc.Run("bash", ["-c", DpkgLoop, "dpkg-loop", file], timeout: TimeSpan.FromMinutes(2)));
        }).ToArray();
        var answers = new List<string>();
        foreach (var (run, n) in runs.Select((r, n) => (r.Result, n)))
        {
            Assert.True(run.ExitCode == 0, run.ToString());
            var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == chunks[n].Count, $"dpkg loop answered {lines.Length} of {chunks[n].Count} pairs: {run}");
            answers.AddRange(lines);
        }
        return answers;
    }

    // The whole list goes through one rpm process: a Lua chunk reads the pairs and asks rpm.vercmp,
    // printing E where it raises an error.
    private static List<string> AskRpm(List<(string, string)> pairs)
    {
        using var dir = new TempDir();
        var file = Path.Join(dir.Path, "pairs");
        File.WriteAllText(file, string.Concat(pairs.Select(p => $"{p.Item1}{Sep}{p.Item2}\n")), new UTF8Encoding(false));
        Assert.DoesNotContain("]]", file);
        // rpm's print appends to the macro's expansion without a newline, so the answers are
        // joined first and printed once.
        var lua = "%{lua: local f = assert(io.open([[" + file + "]], 'r')) local out = {} "
                  + "for line in f:lines() do local a, b = line:match('^([^\\31]*)\\31([^\\31]*)$') "
                  + "local ok, r = pcall(rpm.vercmp, a, b) out[#out + 1] = ok and tostring(r) or 'E' end "
                  + "f:close() print(table.concat(out, '\\n')) }";
        var run = Proc.Run("rpm", ["--eval", lua], timeout: TimeSpan.FromMinutes(2));
        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == pairs.Count, $"rpm answered {lines.Length} of {pairs.Count} pairs: {run}");
        return [.. lines];
    }
}
