using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Scanning;

/// <summary>An rpm tree (sqlite rpmdb, made offline by rpm itself) scans with rpm's names, versions and purls.</summary>
public class ScanRpmTests
{
    [Fact]
    public void Rpm_packages_are_listed_as_rpm_reports_them_and_matched_with_rpm_order()
    {
        using var tmp = new TempDir("scan-rpm");
        Proc.Check("bash", Path.Join(Fixtures.RepoRoot, "tests/fixtures/rpm-tree.sh"), tmp["root"]);
        File.WriteAllText(tmp["root/etc/os-release"], "NAME=\"AlmaLinux\"\nID=\"almalinux\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"AlmaLinux 9.3 (Shamrock Pampas Cat)\"\n");
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["root"], "--output", $"oci:{tmp["image"]}:v1");

        // rpm's own view of the database is the truth.
        var rpmSays = Proc.Check(Tools.Require("rpm"), "--root", tmp["root"], "--define", "_db_backend sqlite", "--dbpath", "/usr/lib/sysimage/rpm", "-qa", "--qf", "%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("gpg-pubkey"))
            .Select(l => l.Replace(" (none):", " ")).Order().ToList();
        var report = JsonNode.Parse(TreechunkCli.Check("oci", "scan", $"oci:{tmp["image"]}:v1", "--json"))!;
        Assert.Equal(["usr/lib/sysimage/rpm/rpmdb.sqlite"], report["package_databases"]!.AsArray().Select(d => (string)d!));
        var packages = report["packages"]!.AsArray();
        var ours = packages.Select(p => $"{p!["name"]} {p["version"]} {p["arch"]}").Order().ToList();
        Assert.Equal(rpmSays.Select(l => string.Join(' ', l.Split(' ')[..3])), ours);
        var libs = packages.Single(p => (string)p!["name"]! == "hello-libs")!;
        Assert.Equal("hello", (string?)libs["source"]);
        Assert.StartsWith("pkg:rpm/almalinux/hello-libs@", (string)libs["purl"]!);
        Assert.Contains("distro=almalinux-9.3", (string)libs["purl"]!);

        var hello = packages.Single(p => (string)p!["name"]! == "hello")!;
        var version = (string)hello["version"]!;
        var entry = new JsonObject
        {
            ["id"] = "ALSA-2099:0001",
            ["summary"] = "hello security update",
            ["affected"] = new JsonArray(new JsonObject
            {
                ["package"] = new JsonObject { ["ecosystem"] = "AlmaLinux:9", ["name"] = "hello-libs" },
                ["ranges"] = new JsonArray(new JsonObject
                {
                    ["type"] = "ECOSYSTEM",
                    // The same version with a release one step on: rpm order says it is newer.
                    ["events"] = new JsonArray(new JsonObject { ["introduced"] = "0" }, new JsonObject { ["fixed"] = version + ".1" }),
                }),
            }),
            ["database_specific"] = new JsonObject { ["severity"] = "Important" },
        };
        ScanImages.WriteEntry(tmp["db"], entry);
        var scanned = JsonNode.Parse(TreechunkCli.Check("oci", "scan", $"oci:{tmp["image"]}:v1", "--json", "--db", tmp["db"]))!;
        var found = scanned["vulnerabilities"]!.AsArray().Single()!;
        Assert.Equal("hello-libs", (string?)found["package"]);
        Assert.Equal("high", (string?)found["severity"]);
        Assert.Equal(version + ".1", (string?)found["fixed_version"]);
    }
}
