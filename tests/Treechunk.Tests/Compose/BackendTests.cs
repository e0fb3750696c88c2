using Treechunk.IO;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Treechunk.Compose;
using Treechunk.Packages;
using Treechunk.Tests.Support;
using Treechunk.Trees;
using Xunit.Abstractions;

namespace Treechunk.Tests.Compose;

/// <summary>
/// Two real mmdebstrap installs of the same treefile with the same SOURCE_DATE_EPOCH, sharing a
/// package cache that starts empty: the second run must take everything from the cache and give
/// the same tree. Each install costs 20-60 s, so every apt test shares these two.
/// </summary>
public sealed class AptInstallFixture : IDisposable
{
    public const long Epoch = 1_700_000_000;
    public TempDir Dir { get; } = new("apt");
    public string Sources { get; }
    public string Cache => Dir["cache"];
    public string First => Dir["first"];
    public string Second => Dir["second"];
    public BackendResult FirstResult { get; }
    public BackendResult SecondResult { get; }
    public TimeSpan FirstTime { get; }
    public TimeSpan SecondTime { get; }
    public List<string> FirstOutput { get; } = [];

    public AptInstallFixture()
    {
        Tools.Require("mmdebstrap");
        Sources = WriteSources(Dir.Path);
        var tf = Treefile(Sources, ["hello"]);
        var sw = Stopwatch.StartNew();
        FirstResult = new AptBackend().Install(tf, First, new BackendOptions { CacheDir = Cache, SourceDateEpoch = Epoch, Output = FirstOutput.Add });
        FirstTime = sw.Elapsed;
        sw.Restart();
        SecondResult = new AptBackend().Install(tf, Second, new BackendOptions { CacheDir = Cache, SourceDateEpoch = Epoch });
        SecondTime = sw.Elapsed;
    }

    /// <summary>A bookworm source on the mirror this machine's apt uses (the only reachable one).</summary>
    public static string WriteSources(string dir)
    {
        var uri = File.ReadLines("/etc/apt/sources.list.d/debian.sources")
            .FirstOrDefault(l => l.StartsWith("URIs:"))?["URIs:".Length..].Trim().Split(' ')[0] ?? "http://deb.debian.org/debian";
        var path = Path.Join(dir, "debian.sources");
        File.WriteAllText(path, $"Types: deb\nURIs: {uri}\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n");
        return path;
    }

    public static Treefile Treefile(string sources, string[] packages, string[]? exclude = null) => new()
    {
        Path = Path.Join(Path.GetDirectoryName(sources)!, "treefile.yaml"),
        Repos = [new RepoDefinition("debian", sources, RepoKind.Apt)],
        Packages = packages,
        ExcludePackages = exclude ?? [],
    };

    public void Dispose() => Dir.Dispose();
}

public class AptBackendTests(AptInstallFixture fx, ITestOutputHelper output) : IClassFixture<AptInstallFixture>
{
    [Fact]
    public void Install_gives_a_tree_with_the_package_and_nothing_host_or_run_specific()
    {
        output.WriteLine($"first install {fx.FirstTime.TotalSeconds:F1} s ({fx.FirstResult}), second {fx.SecondTime.TotalSeconds:F1} s ({fx.SecondResult})");
        var root = fx.First;
        var installed = AptBackend.InstalledPackages(root);
        Assert.Contains(installed, p => p.Name == "hello");
        Assert.Contains(installed, p => p.Name == "apt");
        Assert.Equal(installed.Count, fx.FirstResult.PackageCount);
        Assert.True(fx.FirstOutput.Count > 0, "mmdebstrap output reaches options.Output");

        Assert.True(File.Exists(Path.Join(root, "usr/bin/hello")));
        // The treefile's source file becomes the tree's apt configuration.
        var sources = Directory.GetFiles(Path.Join(root, "etc/apt/sources.list.d"));
        Assert.Contains(sources, s => File.ReadAllText(s).Contains("Suites: bookworm"));

        Assert.Empty(Directory.GetFileSystemEntries(Path.Join(root, "var/lib/apt/lists")));
        Assert.Empty(Directory.GetFiles(Path.Join(root, "var/cache/apt"), "*.bin"));
        Assert.Empty(Directory.GetFiles(Path.Join(root, "var/cache/apt/archives"), "*.deb"));
        Assert.DoesNotContain(Directory.GetFiles(Path.Join(root, "var/log"), "*", SearchOption.AllDirectories), f => new FileInfo(f).Length > 0);
        Assert.Empty(Directory.GetFiles(Path.Join(root, "var/lib/dpkg"), "*-old"));
        Assert.Empty(Directory.GetFiles(Path.Join(root, "var/cache/debconf"), "*-old"));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Join(root, "tmp")));
        Assert.False(File.Exists(Path.Join(root, "var/cache/ldconfig/aux-cache")));
        Assert.False(File.Exists(Path.Join(root, "var/lib/dbus/machine-id")));
        if (File.Exists(Path.Join(root, "etc/machine-id"))) Assert.Equal(0, new FileInfo(Path.Join(root, "etc/machine-id")).Length);
        // shadow's last-change day comes from SOURCE_DATE_EPOCH, not the clock.
        Assert.StartsWith($"root:*:{AptInstallFixture.Epoch / 86400}:", File.ReadAllText(Path.Join(root, "etc/shadow")));
        Assert.False(File.Exists(Path.Join(root, "etc/apt/preferences.d/treechunk-exclude")));
    }

    [Fact]
    public void Second_install_takes_every_package_from_the_cache()
    {
        Assert.Equal(0, fx.FirstResult.CachedPackages);
        Assert.Equal(fx.FirstResult.PackageCount, fx.FirstResult.DownloadedPackages);
        Assert.True(Directory.GetFiles(fx.Cache, "hello_*.deb").Length == 1, "the downloaded .debs are kept in the cache");
        Assert.Equal(fx.FirstResult.PackageCount, fx.SecondResult.PackageCount);
        Assert.Equal(fx.SecondResult.PackageCount, fx.SecondResult.CachedPackages);
        Assert.Equal(0, fx.SecondResult.DownloadedPackages);
    }

    [Fact]
    public void Two_installs_with_the_same_epoch_have_identical_contents()
    {
        // Content, type, mode, owner, link targets and xattrs; never mtimes (OSTree drops them).
        var a = TreeSnapshot.Of(fx.First, hardlinksAsCopies: true);
        var b = TreeSnapshot.Of(fx.Second, hardlinksAsCopies: true);
        output.WriteLine($"{a.Count} entries");
        TreeSnapshot.AssertEqual(a, b);
    }

    [Fact]
    public void Excluded_packages_stay_out_even_when_minbase_would_install_them()
    {
        using var dir = new TempDir("apt-exclude");
        var root = dir["root"];
        // e2fsprogs is Priority: required, so minbase installs it unless told otherwise.
        var tf = AptInstallFixture.Treefile(fx.Sources, ["hello"], ["e2fsprogs"]);
        var sw = Stopwatch.StartNew();
        var result = new AptBackend().Install(tf, root, new BackendOptions { CacheDir = fx.Cache, SourceDateEpoch = AptInstallFixture.Epoch });
        output.WriteLine($"install with exclusion {sw.Elapsed.TotalSeconds:F1} s ({result})");
        var installed = AptBackend.InstalledPackages(root).Select(p => p.Name).ToHashSet();
        Assert.Contains("hello", installed);
        Assert.Contains("apt", installed);
        Assert.DoesNotContain("e2fsprogs", installed);
        // Everything else minbase has is still there.
        var minbase = AptBackend.InstalledPackages(fx.First).Select(p => p.Name).ToHashSet();
        Assert.Empty(installed.Except(minbase));
        Assert.Empty(minbase.Except(installed).Except(["e2fsprogs", "libext2fs2", "libss2", "libcom-err2", "logsave"]));
        // The pin was compose input only.
        Assert.False(File.Exists(Path.Join(root, "etc/apt/preferences.d/treechunk-exclude")));
    }

    [Fact]
    public void Unknown_package_is_one_line_with_apts_message()
    {
        using var dir = new TempDir("apt-bad");
        var tf = AptInstallFixture.Treefile(fx.Sources, ["hello", "nosuch-package"]);
        var lines = new List<string>();
        var e = Assert.Throws<TreechunkException>(() =>
            new AptBackend().Install(tf, dir["root"], new BackendOptions { CacheDir = fx.Cache, SourceDateEpoch = 0, Output = lines.Add }));
        output.WriteLine(e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("E: Unable to locate package nosuch-package", e.Message);
        Assert.DoesNotContain("setup failed", e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
        Assert.Contains(lines, l => l.Contains("nosuch-package"));
    }
}

/// <summary>How apt and mmdebstrap failures become one line, from output seen on this machine.</summary>
public class AptBackendMessageTests
{
    private static TreechunkException Fail(params string[] lines) =>
        AptBackend.Failure(new ProcessRunner.Result(25, lines, lines), ["e2fsprogs"]);

    [Fact]
    public void Unmet_dependency_names_the_dependency_and_the_exclusion()
    {
        var e = Fail("I: installing remaining packages inside the chroot...",
            "The following packages have unmet dependencies:",
            " foo : Depends: e2fsprogs but it is not installable",
            "       Depends: libbar but it is not going to be installed",
            "E: Unable to correct problems, you have held broken packages.",
            "E: setup failed: E: apt-get --yes install foo failed",
            "E: mmdebstrap failed to run");
        Assert.Equal("mmdebstrap failed (exit 25): E: Unable to correct problems, you have held broken packages.; foo : Depends: e2fsprogs but it is not installable; " +
                     "Depends: libbar but it is not going to be installed (e2fsprogs in exclude-packages)", e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
    }

    [Fact]
    public void Network_failure_is_an_environment_error()
    {
        var e = Fail("I: running apt-get update...",
            "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Could not resolve 'deb.debian.org'",
            "E: apt-get update failed",
            "E: mmdebstrap failed to run");
        Assert.StartsWith("mmdebstrap failed (exit 25): E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease Could not resolve", e.Message);
        Assert.Equal(ExitCodes.EnvironmentError, e.ExitCode);
    }

    [Fact]
    public void Mmdebstraps_own_error_is_used_when_apt_said_nothing()
    {
        var e = Fail("E: /tmp/x is not empty", "E: mmdebstrap failed to run");
        Assert.Equal("mmdebstrap failed (exit 25): E: /tmp/x is not empty", e.Message);
    }

    [Fact]
    public void Required_pattern_leaves_out_excluded_names()
    {
        Assert.Equal("?narrow(?or(?archive(^bookworm$),?codename(^bookworm$)),?architecture(arm64),?and(?priority(required),?not(?essential),?not(?exact-name(e2fsprogs)),?not(?exact-name(tzdata))))",
            AptBackend.RequiredPattern("bookworm", "arm64", ["e2fsprogs", "tzdata"]));
        Assert.Contains("?archive(^stable\\.1$)", AptBackend.RequiredPattern("stable.1", null, []));
    }

    [Fact]
    public void Suite_defaults_to_the_first_suite_of_the_sources_file()
    {
        using var dir = new TempDir("suites");
        File.WriteAllText(dir["a.sources"], "# comment\nTypes: deb\nURIs: http://x/debian\nSuites: trixie trixie-updates\nComponents: main\n");
        Assert.Equal("trixie", AptBackend.FirstSuite(dir["a.sources"]));
    }
}

/// <summary>The fixture repository of tests/fixtures/rpm-repo.sh, built once per test class.</summary>
public sealed class RpmRepoFixture : IDisposable
{
    public TempDir Dir { get; } = new("rpmrepo");
    public string Out => Dir["out"];
    public string RepoFile => Path.Join(Out, "local.repo");

    public RpmRepoFixture()
    {
        Tools.Require("dnf");
        Tools.Require("rpmbuild");
        Tools.Require("createrepo_c");
        Proc.Check("bash", Path.Join(Fixtures.RepoRoot, "tests/fixtures/rpm-repo.sh"), Out);
    }

    public Treefile Treefile(string[] packages, string? repoFile = null, string[]? exclude = null) => new()
    {
        Path = Path.Join(Out, "treefile.yaml"),
        Repos = [new RepoDefinition("local", repoFile ?? RepoFile, RepoKind.Dnf)],
        Packages = packages,
        ExcludePackages = exclude ?? [],
        Releasever = "99",
    };

    public void Dispose() => Dir.Dispose();
}

public class DnfBackendTests(RpmRepoFixture fx, ITestOutputHelper output) : IClassFixture<RpmRepoFixture>
{
    [Fact]
    public void Install_gives_the_rpm_files_and_a_sqlite_database_naming_their_source()
    {
        using var dir = new TempDir("dnf");
        var root = dir["root"];
        var lines = new List<string>();
        var sw = Stopwatch.StartNew();
        var result = new DnfBackend().Install(fx.Treefile(["hello", "tool"]), root, new BackendOptions { SourceDateEpoch = 1_700_000_000, Output = lines.Add });
        output.WriteLine($"dnf install {sw.Elapsed.TotalSeconds:F1} s ({result})");

        // hello-data comes in as hello's dependency.
        Assert.Equal(new BackendResult(3, 0, 3), result);
        Assert.Contains(lines, l => l.Contains("Complete!"));
        Assert.Equal("hello from rpm\n", File.ReadAllText(Path.Join(root, "usr/share/hello/greeting.txt")));
        Assert.Equal("verbose = no\n", File.ReadAllText(Path.Join(root, "etc/tool.conf")));
        Assert.True(File.Exists(Path.Join(root, "usr/lib/sysimage/rpm/rpmdb.sqlite")));

        using var tree = DirectoryTree.Open(root);
        var db = PackageDatabases.Detect(tree);
        Assert.NotNull(db);
        Assert.Equal("rpm", db.Kind);
        Assert.Equal("greeter", db.OwnerOf["usr/bin/hello"]);
        Assert.Equal("greeter", db.OwnerOf["usr/share/hello/greeting.txt"]);
        Assert.Equal("tool", db.OwnerOf["usr/bin/tool"]);
        Assert.Equal(["hello", "hello-data"], db.Components["greeter"].Packages);

        // Only what the packages ship, the database, and etc (which holds tool.conf).
        var entries = tree.Entries.Select(e => e.Path).Order(StringComparer.Ordinal).ToList();
        output.WriteLine(string.Join("\n", entries));
        Assert.Equal(
            ["etc", "etc/tool.conf", "usr", "usr/bin", "usr/bin/hello", "usr/bin/tool", "usr/lib", "usr/lib/sysimage", "usr/lib/sysimage/rpm",
             "usr/lib/sysimage/rpm/rpmdb.sqlite", "usr/share", "usr/share/hello", "usr/share/hello/greeting.txt"],
            entries);
    }

    [Fact]
    public void Two_installs_with_the_same_epoch_have_identical_contents()
    {
        using var dir = new TempDir("dnf-repro");
        var tf = fx.Treefile(["hello", "tool"]);
        new DnfBackend().Install(tf, dir["a"], new BackendOptions { SourceDateEpoch = 1_700_000_000 });
        // rpm records install times in the database: a later second must not show.
        Thread.Sleep(1100);
        new DnfBackend().Install(tf, dir["b"], new BackendOptions { SourceDateEpoch = 1_700_000_000 });
        TreeSnapshot.AssertEqual(TreeSnapshot.Of(dir["a"]), TreeSnapshot.Of(dir["b"]));
    }

    [Fact]
    public void Second_install_from_an_http_repo_takes_packages_from_the_cache()
    {
        using var dir = new TempDir("dnf-cache");
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        // dnf uses file:// packages in place; only a remote repo makes it download and keep them.
        var psi = new ProcessStartInfo("python3", ["-m", "http.server", "--bind", "127.0.0.1", port.ToString(), "--directory", Path.Join(fx.Out, "repo")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var server = Process.Start(psi)!;
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            WaitForPort(port);
            var repo = dir["http.repo"];
            File.WriteAllText(repo, $"[treechunk-http]\nname=fixture over http\nbaseurl=http://127.0.0.1:{port}/\ngpgcheck=0\n");
            var tf = fx.Treefile(["hello", "tool"], repo);
            var options = new BackendOptions { CacheDir = dir["cache"], SourceDateEpoch = 1_700_000_000 };
            var first = new DnfBackend().Install(tf, dir["a"], options);
            var second = new DnfBackend().Install(tf, dir["b"], options);
            output.WriteLine($"first {first}, second {second}");
            Assert.Equal(new BackendResult(3, 0, 3), first);
            Assert.Equal(new BackendResult(3, 3, 0), second);
            Assert.Equal(3, Directory.GetFiles(dir["cache"], "*.rpm", SearchOption.AllDirectories).Length);
            Assert.False(Directory.Exists(Path.Join(dir["b"], "var/cache/dnf")));
        }
        finally
        {
            server.Kill();
            server.WaitForExit();
        }
    }

    private static void WaitForPort(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
        }
    }

    [Fact]
    public void Unknown_package_is_one_line_with_dnfs_message()
    {
        using var dir = new TempDir("dnf-bad");
        var e = Assert.Throws<TreechunkException>(() =>
            new DnfBackend().Install(fx.Treefile(["hello", "nosuch"]), dir["root"], new BackendOptions()));
        output.WriteLine(e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal("dnf failed (exit 1): No match for argument: nosuch", e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
    }

    [Fact]
    public void Excluding_a_needed_package_is_one_line_with_dnfs_problem()
    {
        using var dir = new TempDir("dnf-exclude");
        var e = Assert.Throws<TreechunkException>(() =>
            new DnfBackend().Install(fx.Treefile(["hello"], exclude: ["hello-data"]), dir["root"], new BackendOptions()));
        output.WriteLine(e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("hello-data-1.0-1.noarch is filtered out by exclude filtering", e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
    }

    [Fact]
    public void Asking_for_an_excluded_package_is_an_error_not_a_silent_omission()
    {
        using var dir = new TempDir("dnf-exclude-asked");
        var e = Assert.Throws<TreechunkException>(() =>
            new DnfBackend().Install(fx.Treefile(["hello", "tool"], exclude: ["tool"]), dir["root"], new BackendOptions()));
        Assert.Equal("dnf failed (exit 1): Error: Unable to find a match: tool", e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
    }

    [Fact]
    public void Repo_using_releasever_needs_one()
    {
        using var dir = new TempDir("dnf-rv");
        var repo = dir["f.repo"];
        File.WriteAllText(repo, "[f]\nbaseurl=http://127.0.0.1:1/$releasever/\ngpgcheck=0\n");
        var e = Assert.Throws<TreechunkException>(() =>
            new DnfBackend().Install(fx.Treefile(["hello"], repo) with { Releasever = null }, dir["root"], new BackendOptions()));
        Assert.Contains("releasever", e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
    }

    [Theory]
    [InlineData("[a]\nbaseurl=x\ngpgcheck=0\n", true)]
    [InlineData("[a]\ngpgcheck = false\n[b]\ngpgcheck=no\n", true)]
    [InlineData("[a]\ngpgcheck=0\n[b]\nbaseurl=x\n", false)]
    [InlineData("[a]\ngpgcheck=1\n", false)]
    [InlineData("", false)]
    public void Nogpgcheck_only_when_every_repo_opts_out(string text, bool expected) =>
        Assert.Equal(expected, DnfBackend.DisablesGpgCheck(text));
}

public class PackageBackendsTests
{
    private static Treefile With(params RepoDefinition[] repos) => new() { Path = "/x/tree.yaml", Repos = repos };

    [Fact]
    public void Chooses_by_repo_kind()
    {
        Assert.Equal("apt", PackageBackends.For(With(new RepoDefinition("d", "/x/d.sources", RepoKind.Apt))).Name);
        Assert.Equal("dnf", PackageBackends.For(With(new RepoDefinition("f", "/x/f.repo", RepoKind.Dnf))).Name);
    }

    [Fact]
    public void No_repos_is_an_error_naming_the_treefile()
    {
        var e = Assert.Throws<TreechunkException>(() => PackageBackends.For(With()));
        Assert.Equal("treefile /x/tree.yaml names no repos", e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
    }

    [Fact]
    public void Mixed_repo_kinds_are_an_error()
    {
        var e = Assert.Throws<TreechunkException>(() => PackageBackends.For(With(
            new RepoDefinition("d", "/x/d.sources", RepoKind.Apt), new RepoDefinition("f", "/x/f.repo", RepoKind.Dnf))));
        Assert.Contains("mixes apt", e.Message);
    }
}
