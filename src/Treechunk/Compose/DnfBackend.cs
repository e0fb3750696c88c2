using Treechunk.IO;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Treechunk.Compose;

/// <summary>
/// Installs rpm packages with dnf into an empty root, seeing only the treefile's repos (never the
/// host's configuration, repos, variables or plugins), and leaves a sqlite rpm database.
/// </summary>
public sealed partial class DnfBackend : IPackageBackend
{
    public string Name => "dnf";

    /// <summary>Where the database goes when the host's rpm would put it elsewhere.</summary>
    internal const string DefaultDbPath = "/usr/lib/sysimage/rpm";
    private static readonly string[] StandardDbPaths = [DefaultDbPath, "/var/lib/rpm"];

    // dnf keeps its cache under the install root (it prefixes cachedir with it); the package
    // cache is moved in there for the run and back out afterwards.
    private const string RootCache = "var/cache/dnf";

    // Directories dnf creates for its own state. After cleaning they are removed when empty and
    // owned by no package, so a root holding three packages holds only what they ship.
    private static readonly string[] DnfDirectories =
        ["var/cache/dnf", "var/lib/dnf", "etc/dnf/modules.d", "etc/dnf", "var/cache", "var/lib", "var/log", "var", "etc"];

    public BackendResult Install(Treefile treefile, string rootfs, BackendOptions options)
    {
        var repos = treefile.Repos.Where(r => r.Kind == RepoKind.Dnf).ToList();
        if (repos.Count == 0) throw new TreechunkException($"treefile {treefile.Path} names no dnf repos");
        var repoTexts = new List<(RepoDefinition Repo, string Text)>();
        foreach (var r in repos)
        {
            if (!File.Exists(r.Path)) throw new TreechunkException($"treefile {treefile.Path}: repo file {r.Path} does not exist");
            repoTexts.Add((r, File.ReadAllText(r.Path)));
        }
        if (treefile.Releasever == null && repoTexts.FirstOrDefault(t => t.Text.Contains("$releasever") || t.Text.Contains("${releasever}")) is { Repo: { } needs })
            throw new TreechunkException($"treefile {treefile.Path}: repo {needs.Name} uses $releasever but the treefile sets no releasever");
        if (treefile.Packages.Count == 0) throw new TreechunkException($"treefile {treefile.Path} names no packages");

        rootfs = Path.GetFullPath(rootfs);
        Directory.CreateDirectory(rootfs);
        var cache = options.CacheDir == null ? null : Path.GetFullPath(options.CacheDir);

        var scratchDir = TempDirectory.Create("dnf");
        var scratch = scratchDir.Path;
        try
        {
            var reposdir = Path.Join(scratch, "repos.d");
            var varsdir = Path.Join(scratch, "vars");
            Directory.CreateDirectory(reposdir);
            Directory.CreateDirectory(varsdir);
            foreach (var (r, text) in repoTexts)
            {
                // dnf reads only *.repo from a reposdir.
                var name = Path.GetFileName(r.Path);
                File.WriteAllText(Path.Join(reposdir, name.EndsWith(".repo", StringComparison.Ordinal) ? name : name + ".repo"), text);
            }
            // Our own main config: the host's (Debian ships skip_if_unavailable=True) must not
            // turn an unreachable repo into a tree that silently lacks packages.
            var conf = Path.Join(scratch, "dnf.conf");
            File.WriteAllText(conf, "[main]\ngpgcheck=True\nskip_if_unavailable=False\nstrict=True\nplugins=False\n");

            var env = new Dictionary<string, string?>
            {
                ["SOURCE_DATE_EPOCH"] = options.SourceDateEpoch.ToString(CultureInfo.InvariantCulture),
            };
            var dbPath = ConfigureRpm(scratch, env);

            var args = new List<string>
            {
                "install", "-y",
                "--config=" + conf,
                "--installroot=" + rootfs,
                "--noplugins",
                // Metadata from an earlier compose may be within metadata_expire; a compose must
                // see the repos as they are now.
                "--refresh",
                "--setopt=reposdir=" + reposdir,
                "--setopt=varsdir=" + varsdir,
                "--setopt=install_weak_deps=False",
                "--setopt=keepcache=" + (cache != null ? "True" : "False"),
            };
            if (treefile.Releasever != null) args.Add("--releasever=" + treefile.Releasever);
            if (options.Architecture != null) args.Add("--forcearch=" + options.Architecture.Rpm);
            // --nogpgcheck covers every repo, so it is only right when every repo already opts out.
            if (repoTexts.All(t => DisablesGpgCheck(t.Text))) args.Add("--nogpgcheck");
            foreach (var e in treefile.ExcludePackages) args.Add("--exclude=" + e);
            args.Add("--");
            args.AddRange(treefile.Packages);

            HashSet<string> cachedBefore = [];
            ProcessRunner.Result result;
            if (cache != null)
            {
                Directory.CreateDirectory(cache);
                cachedBefore = RpmsIn(cache);
                MoveContents(cache, Path.Join(rootfs, RootCache));
            }
            try
            {
                result = ProcessRunner.Run("dnf", args, env, options.Output, "install it with: apt-get install dnf");
            }
            finally
            {
                if (cache != null && Directory.Exists(Path.Join(rootfs, RootCache)))
                    MoveContents(Path.Join(rootfs, RootCache), cache);
            }
            if (result.ExitCode != 0) throw Failure(result);

            var (packages, owned) = Query(rootfs, dbPath, env);
            Clean(rootfs, dbPath, owned);
            int fromCache = packages.Count(p => cachedBefore.Contains(p + ".rpm"));
            return new BackendResult(packages.Count, fromCache, packages.Count - fromCache);
        }
        finally
        {
            scratchDir.Dispose();
        }
    }

    /// <summary>
    /// Makes rpm write a sqlite database at a standard place, and returns that place. Debian's rpm
    /// puts the database at ~/.rpmdb (inside the install root: root/.rpmdb), where neither our
    /// reader nor the tree's own rpm would look. dnf cannot pass rpm macros, but rpm reads
    /// ~/.rpmmacros last, so a private HOME carries the override.
    /// </summary>
    private static string ConfigureRpm(string scratch, Dictionary<string, string?> env)
    {
        var r = ProcessRunner.Run("rpm", ["--eval", "%{_dbpath}", "--eval", "%{_db_backend}"], env, null, "install it with: apt-get install rpm");
        var values = r.Lines.Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        if (r.ExitCode != 0 || values.Count != 2)
            throw new TreechunkException($"rpm --eval failed: {ProcessRunner.OneLine(r.Lines)}", ExitCodes.EnvironmentError);
        var dbPath = StandardDbPaths.Contains(values[0]) ? values[0] : DefaultDbPath;
        if (dbPath == values[0] && values[1] == "sqlite") return dbPath;
        var home = Path.Join(scratch, "home");
        Directory.CreateDirectory(home);
        File.WriteAllText(Path.Join(home, ".rpmmacros"), $"%_dbpath {dbPath}\n%_db_backend sqlite\n");
        env["HOME"] = home;
        return dbPath;
    }

    /// <summary>The installed packages (as N-V-R.A) and every path they own (relative, no leading slash).</summary>
    private static (List<string> Packages, HashSet<string> Owned) Query(string rootfs, string dbPath, IReadOnlyDictionary<string, string?> env)
    {
        var r = ProcessRunner.Run("rpm",
            ["--root", rootfs, "--dbpath", dbPath, "-qa", "--qf", "P %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n[F %{FILENAMES}\\n]"],
            env, null, "install it with: apt-get install rpm");
        if (r.ExitCode != 0)
            throw new TreechunkException($"dnf left no readable rpm database in {rootfs}: {ProcessRunner.OneLine(r.Lines.TakeLast(3))}", ExitCodes.EnvironmentError);
        var packages = new List<string>();
        var owned = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in r.Lines)
        {
            if (line.StartsWith("P ", StringComparison.Ordinal))
            {
                // Imported signing keys are database entries, not packages.
                if (!line.StartsWith("P gpg-pubkey-", StringComparison.Ordinal)) packages.Add(line[2..]);
            }
            else if (line.StartsWith("F ", StringComparison.Ordinal)) owned.Add(line[2..].TrimStart('/'));
        }
        if (!File.Exists(Path.Join(rootfs, dbPath.TrimStart('/'), "rpmdb.sqlite")))
            throw new TreechunkException($"dnf did not write a sqlite rpm database at {dbPath} in {rootfs}", ExitCodes.EnvironmentError);
        return (packages, owned);
    }

    internal static void Clean(string rootfs, string dbPath, IReadOnlySet<string> owned)
    {
        var c = new RootfsCleaner(rootfs);
        c.DeleteIn(RootCache);
        c.DeleteIn("var/log", "dnf*");
        c.Delete("var/log/hawkey.log");
        // The transaction history records host times and command lines.
        c.DeleteIn("var/lib/dnf", "history*");
        // A closed database needs neither its shared-memory index nor an empty write-ahead log;
        // a non-empty log would hold committed data and stays.
        var db = dbPath.TrimStart('/');
        c.Delete(db + "/rpmdb.sqlite-shm");
        if (new FileInfo(c.FullPath(db + "/rpmdb.sqlite-wal")) is { Exists: true, Length: 0 }) c.Delete(db + "/rpmdb.sqlite-wal");
        c.Delete(db + "/.rpm.lock");
        c.Truncate("etc/machine-id");
        c.Delete("var/lib/dbus/machine-id");
        foreach (var dir in DnfDirectories)
            if (!owned.Contains(dir)) c.RemoveIfEmpty(dir);
    }

    internal static bool DisablesGpgCheck(string repoText)
    {
        // A repo without gpgcheck inherits the main config's gpgcheck=True.
        var repo = KeyFile.Parse(repoText, "repo file", strict: false);
        return repo.Groups.Count > 0 && repo.Groups.All(g =>
            repo.Get(g, "gpgcheck")?.ToLowerInvariant() is "0" or "false" or "no" or "off");
    }

    private static HashSet<string> RpmsIn(string dir) =>
        Directory.EnumerateFiles(dir, "*.rpm", SearchOption.AllDirectories).Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal)!;

    /// <summary>Moves a directory's entries into another (renames when they share a filesystem, copies otherwise).</summary>
    private static void MoveContents(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos("*", new EnumerationOptions { AttributesToSkip = 0 }))
        {
            var target = Path.Join(to, entry.Name);
            if (entry is DirectoryInfo { LinkTarget: null } dir)
            {
                if (Directory.Exists(target)) { MoveContents(dir.FullName, target); dir.Delete(recursive: true); continue; }
                try { Directory.Move(dir.FullName, target); }
                catch (IOException) { MoveContents(dir.FullName, target); dir.Delete(recursive: true); }
            }
            else
            {
                File.Move(entry.FullName, target, overwrite: true);
            }
        }
    }

    internal static TreechunkException Failure(ProcessRunner.Result result)
    {
        var lines = result.Lines;
        var parts = lines.Where(l => l.StartsWith("No match for argument: ", StringComparison.Ordinal)).ToList();
        if (parts.Count == 0)
        {
            int error = lines.ToList().FindIndex(l => l.StartsWith("Error:", StringComparison.Ordinal));
            if (error >= 0)
            {
                // A dependency problem is reported as "Error: " followed by indented lines.
                if (lines[error].Trim() != "Error:") parts.Add(lines[error]);
                parts.AddRange(lines.Skip(error + 1).TakeWhile(l => l.StartsWith(' ')).Select(l => l.Trim().TrimStart('-').Trim())
                    .Where(l => l != "conflicting requests"));
            }
            else
            {
                parts.Add(lines.LastOrDefault(l => l.Trim().Length > 0) ?? "no output");
            }
        }
        var message = ProcessRunner.OneLine(parts);
        bool badInput = BadInputMessage().IsMatch(message);
        return new TreechunkException($"dnf failed (exit {result.ExitCode}): {message}",
            badInput ? ExitCodes.BadInput : ExitCodes.EnvironmentError);
    }

    [GeneratedRegex(@"No match for argument|Unable to find a match|Problem( \d+)?:|nothing provides|conflicts with|filtered out by exclude")]
    private static partial Regex BadInputMessage();
}
