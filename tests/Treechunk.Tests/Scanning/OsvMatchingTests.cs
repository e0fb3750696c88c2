using System.Text;
using Treechunk.Scanning;

namespace Treechunk.Tests.Scanning;

/// <summary>The matcher as a pure function: OSV's range evaluation, ecosystems, severities, parsing.</summary>
public class OsvMatchingTests
{
    private static readonly Distro Bookworm = new("debian", "12", "bookworm", null, []);
    private static readonly Distro Alma93 = new("almalinux", "9.3", null, null, ["rhel"]);

    private static OsvAffected Affected(string ecosystem, string name, params (string Kind, string Version)[] events) =>
        new(ecosystem, name, [events.Select(e => new OsvEvent(e.Kind, e.Version)).ToList()], [], null);

    private static OsvEntry Entry(string id, params OsvAffected[] affected) => new(id, [], "s", null, [], affected, [], id + ".json");

    private static InstalledPackage Deb(string name, string version, string? source = null, string? sourceVersion = null) =>
        new(PackageType.Deb, name, version, "amd64", source ?? name, sourceVersion ?? version);

    [Theory]
    [InlineData("1.0-1", true)]
    [InlineData("1.9", true)]
    [InlineData("2.0-1", false)]   // the fix itself
    [InlineData("2.0-1~bpo1", true)] // ~ sorts before the fix
    [InlineData("1:0.1", false)]   // the epoch outranks everything
    public void Introduced_zero_to_fixed_follows_dpkg_order(string installed, bool affected)
    {
        var a = Affected("Debian:12", "x", ("introduced", "0"), ("fixed", "2.0-1"));
        Assert.Equal(affected, OsvMatcher.IsAffected(a, installed, DebianVersion.Compare, out var fix));
        Assert.Equal(affected ? "2.0-1" : null, fix);
    }

    [Fact]
    public void Last_affected_limit_listed_versions_and_several_intervals()
    {
        Comparison<string> cmp = DebianVersion.Compare;
        var last = Affected("Debian:12", "x", ("introduced", "1.0"), ("last_affected", "1.5"));
        Assert.False(OsvMatcher.IsAffected(last, "0.9", cmp, out _));
        Assert.True(OsvMatcher.IsAffected(last, "1.5", cmp, out var none));
        Assert.Null(none);
        Assert.False(OsvMatcher.IsAffected(last, "1.5.1", cmp, out _));
        var limited = Affected("Debian:12", "x", ("introduced", "0"), ("limit", "3.0"));
        Assert.True(OsvMatcher.IsAffected(limited, "2.9", cmp, out _));
        Assert.False(OsvMatcher.IsAffected(limited, "3.0", cmp, out _));
        // Two intervals in one range, events out of order in the file: [1, 2) and [3, 4).
        var two = Affected("Debian:12", "x", ("fixed", "4"), ("introduced", "3"), ("fixed", "2"), ("introduced", "1"));
        Assert.True(OsvMatcher.IsAffected(two, "1.5", cmp, out var fix1));
        Assert.Equal("2", fix1);
        Assert.False(OsvMatcher.IsAffected(two, "2.5", cmp, out _));
        Assert.True(OsvMatcher.IsAffected(two, "3.5", cmp, out var fix2));
        Assert.Equal("4", fix2);
        var listed = new OsvAffected("Debian:12", "x", [], ["1.2-3"], null);
        Assert.True(OsvMatcher.IsAffected(listed, "1.2-3", cmp, out _));
        Assert.False(OsvMatcher.IsAffected(listed, "1.2-4", cmp, out _));
    }

    [Fact]
    public void Ecosystems_match_by_family_and_release()
    {
        Assert.True(OsvMatcher.EcosystemMatches("Debian:12", Bookworm));
        Assert.True(OsvMatcher.EcosystemMatches("Debian", Bookworm));
        Assert.False(OsvMatcher.EcosystemMatches("Debian:11", Bookworm));
        Assert.False(OsvMatcher.EcosystemMatches("Ubuntu:22.04:LTS", Bookworm));
        Assert.True(OsvMatcher.EcosystemMatches("Ubuntu:22.04:LTS", new Distro("ubuntu", "22.04", "jammy", null, ["debian"])));
        Assert.True(OsvMatcher.EcosystemMatches("AlmaLinux:9", Alma93));
        Assert.False(OsvMatcher.EcosystemMatches("AlmaLinux:8", Alma93));
        Assert.False(OsvMatcher.EcosystemMatches("Rocky Linux:9", Alma93));
        Assert.True(OsvMatcher.EcosystemMatches("Rocky Linux:9", new Distro("rocky", "9.2", null, null, [])));
    }

    [Fact]
    public void Debian_advisories_match_every_binary_of_the_source_by_the_source_version()
    {
        var inventory = new PackageInventory(Bookworm,
            [Deb("libssl3", "3.0.11-1~deb12u2", "openssl"), Deb("openssl", "3.0.11-1~deb12u2"), Deb("libbrotli1", "1.0.9-2+b6", "brotli", "1.0.9-2"), Deb("bash", "5.2.15-2+b2", "bash", "5.2.15-2"),
             // Binaries can carry versions of their own: lvm2's libdevmapper is 2:1.02.185-2.
             Deb("libdevmapper1.02.1", "2:1.02.185-2", "lvm2", "2.03.16-2")],
            ["var/lib/dpkg/status"], []);
        var findings = OsvMatcher.Match(inventory, [
            Entry("DSA-1", Affected("Debian:12", "openssl", ("introduced", "0"), ("fixed", "3.0.13-1~deb12u1"))),
            // binNMU: the source 1.0.9-2 is affected up to 1.0.9-2+deb12u1, whatever the binary's +b6 says.
            Entry("DSA-2", Affected("Debian:12", "brotli", ("introduced", "0"), ("fixed", "1.0.9-2+deb12u1"))),
            // A binary name in a Debian advisory is not a source: no match for libssl3 by name.
            Entry("DSA-3", Affected("Debian:12", "libssl3", ("introduced", "0"))),
            Entry("DSA-4", Affected("Debian:11", "bash", ("introduced", "0"))),
            Entry("DSA-5", Affected("Debian:12", "lvm2", ("introduced", "0"), ("fixed", "2.03.16-3"))),
        ]);
        Assert.Equal(["DSA-1 libssl3", "DSA-1 openssl", "DSA-2 libbrotli1", "DSA-5 libdevmapper1.02.1"], findings.Select(f => $"{f.Id} {f.Package.Name}"));
        Assert.All(findings, f => Assert.Equal(Severity.Unknown, f.Severity));
    }

    [Fact]
    public void Rpm_advisories_match_binary_names_with_rpm_order()
    {
        var inventory = new PackageInventory(Alma93,
            [new(PackageType.Rpm, "openssl-libs", "1:3.0.7-24.el9", "x86_64", "openssl", "1:3.0.7-24.el9")], ["usr/lib/sysimage/rpm/rpmdb.sqlite"], []);
        var fixedLater = Entry("ALSA-1", Affected("AlmaLinux:9", "openssl-libs", ("introduced", "0"), ("fixed", "1:3.0.7-25.el9_3")));
        var fixedBefore = Entry("ALSA-2", Affected("AlmaLinux:9", "openssl-libs", ("introduced", "0"), ("fixed", "1:3.0.7-6.el9")));
        var noEpoch = Entry("ALSA-3", Affected("AlmaLinux:9", "openssl-libs", ("introduced", "0"), ("fixed", "3.0.9-1.el9"))); // epoch 0 < 1
        Assert.Equal(["ALSA-1"], OsvMatcher.Match(inventory, [fixedLater, fixedBefore, noEpoch]).Select(f => f.Id));
    }

    [Theory]
    [InlineData("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Severity.Critical)]
    [InlineData("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, Severity.Critical)]
    [InlineData("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N", 7.4, Severity.High)]
    [InlineData("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5, Severity.Medium)]
    [InlineData("CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1, Severity.Low)]
    [InlineData("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4, Severity.Medium)]
    [InlineData("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0, Severity.Negligible)]
    public void Cvss3_base_scores_are_the_specifications(string vector, double score, Severity severity)
    {
        var rating = Ratings.FromOsvSeverity("CVSS_V3", vector)!;
        Assert.Equal(score, rating.Score);
        Assert.Equal(severity, rating.Severity);
    }

    [Fact]
    public void Words_from_distributions_map_to_severities_and_unknown_words_to_none()
    {
        Assert.Equal(Severity.High, Ratings.FromWord("Important", "x")!.Severity);
        Assert.Equal(Severity.Medium, Ratings.FromWord("medium**", "x")!.Severity);
        Assert.Equal(Severity.Negligible, Ratings.FromWord("unimportant", "x")!.Severity);
        Assert.Null(Ratings.FromWord("not yet assigned", "x"));
        Assert.Null(Ratings.FromOsvSeverity("CVSS_V3", "CVSS:3.1/AV:X/AC:L"));
        Assert.Throws<TreechunkException>(() => Ratings.ParseThreshold("severe"));
    }

    private static OsvEntry? Parse(string json) =>
        OsvDatabase.Parse(new MemoryStream(Encoding.UTF8.GetBytes(json)), "t.json", (_, _) => true);

    [Fact]
    public void Osv_parsing_keeps_ecosystem_ranges_and_drops_withdrawn_and_git_ranges()
    {
        var e = Parse("""
            {"id": "DEBIAN-CVE-2025-1", "aliases": ["CVE-2025-1"], "details": "line one\nline two",
             "affected": [{"package": {"ecosystem": "Debian:12", "name": "x"}, "ecosystem_specific": {"urgency": "low"},
                           "ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "abc"}]},
                                      {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2"}]}]}]}
            """)!;
        Assert.Single(e.Affected.Single().Ranges);
        Assert.Equal(Severity.Low, e.Affected.Single().Severity!.Severity);
        Assert.Null(Parse("""{"id": "X", "withdrawn": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Debian:12", "name": "x"}}]}"""));
        // Entries about nothing the image has are dropped while reading.
        Assert.Null(OsvDatabase.Parse(new MemoryStream(Encoding.UTF8.GetBytes("""{"id": "X", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}}]}""")), "t.json",
            (ecosystem, _) => ecosystem.StartsWith("Debian")));
        Assert.ThrowsAny<Exception>(() => Parse("""{"affected": []}"""));
        Assert.ThrowsAny<Exception>(() => Parse("""{"id": "X", "affected": {"package": 1}}"""));
        Assert.ThrowsAny<Exception>(() => Parse("""{"id": "X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": 2}]}]}]}"""));
    }
}
