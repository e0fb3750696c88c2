using System.Diagnostics;
using Treechunk.IO;
using Treechunk.Build;
using Treechunk.Encapsulation;
using Treechunk.Oci;
using Treechunk.Ostree;
using Treechunk.Posix;
using Treechunk.Trees;

namespace Treechunk.Compose;

public sealed record ComposeOptions
{
    public required string RepoPath { get; init; }
    public string? CacheDir { get; init; }
    /// <summary>The architecture to compose for; null: the host's.</summary>
    public Oci.CpuArchitecture? Architecture { get; init; }
    public long? SourceDateEpoch { get; init; }
    /// <summary>The package manager's output, line by line (the CLI shows it with --verbose).</summary>
    public Action<string>? Output { get; init; }
    public Action<string>? Warn { get; init; }
}

public sealed record ComposeResult(string Commit, string Ref, string? Version, int Packages, int PackagesFromCache, int Files, IReadOnlyDictionary<string, double> PhaseSeconds);

/// <summary>
/// compose tree: treefile -> package manager into a fresh rootfs -> treefile edits (add-files,
/// remove-files, units, postprocess) -> OSTree commit. Nothing is committed when any step fails.
/// </summary>
public static class ComposeRunner
{
    public static ComposeResult ComposeTree(Treefile tf, IPackageBackend backend, ComposeOptions options, IBuildProgress? progress = null)
    {
        progress ??= NullProgress.Instance;
        var phases = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        void EndPhase(string name) { phases[name] = Math.Round(clock.Elapsed.TotalSeconds, 3); clock.Restart(); }

        // ${basearch} as rpm-ostree spells it (x86_64, aarch64), so one treefile composes every
        // architecture into one repository without their commits sharing a branch.
        var refName = (tf.Ref ?? throw new TreechunkException($"treefile {tf.Path} has no 'ref'"))
            .Replace("${basearch}", (options.Architecture ?? Oci.Architectures.Host).Rpm, StringComparison.Ordinal);
        OstreeRepo.ValidateRefName(refName);
        var repo = OstreeRepo.OpenOrInit(options.RepoPath, RepoMode.Archive);

        if (options.Architecture is { } arch) ForeignBinaries.CheckRunnable(arch);
        using var rootfs = TempDirectory.Create("rootfs");
        progress.Phase($"Installing {tf.Packages.Count} packages ({backend.Name}{(options.Architecture is { } a ? ", " + a.Oci : "")})");
        var installed = backend.Install(tf, rootfs.Path, new BackendOptions
        {
            CacheDir = options.CacheDir != null ? Path.Join(options.CacheDir, "packages") : null,
            Architecture = options.Architecture,
            Output = options.Output,
            SourceDateEpoch = options.SourceDateEpoch ?? 0,
        });
        EndPhase("install");

        progress.Phase("Applying treefile edits");
        EmptyDev(rootfs.Path);
        AddFiles(tf, rootfs.Path);
        RemoveFiles(tf, rootfs.Path);
        EnableUnits(tf, rootfs.Path, options.Warn);
        RunPostprocess(tf, rootfs.Path, options);
        EndPhase("postprocess");

        progress.Phase("Committing");
        string? version = null;
        if (tf.AutomaticVersionPrefix is { } prefix)
            version = NextVersion(prefix, PreviousVersion(repo, refName));
        using var tree = DirectoryTree.Open(rootfs.Path, options.Warn);
        var metadata = new List<KeyValuePair<string, Variant>>();
        if (version != null) metadata.Add(KeyValuePair.Create("version", new Variant("s", version)));
        var result = CommitWriter.Write(repo, tree, new CommitOptions
        {
            Subject = version != null ? $"{refName} {version}" : refName,
            Timestamp = options.SourceDateEpoch is { } epoch ? (ulong)epoch : null,
            Ref = refName,
            Metadata = metadata,
            Warn = options.Warn,
        });
        EndPhase("commit");
        return new ComposeResult(result.Checksum, refName, version, installed.PackageCount, installed.CachedPackages, tree.Entries.Count, phases);
    }

    /// <summary>
    /// compose build-ostree: compose tree, then container-encapsulate the new commit. The
    /// treefile's oci: section fills what the command line left unset; its container-cmd is the
    /// image's Cmd.
    /// </summary>
    public static (ComposeResult Compose, BuildResult Image) BuildOstree(Treefile tf, IPackageBackend backend, ComposeOptions options,
        IImageDestination output, BuildOptions buildOptions, IBuildProgress? progress = null)
    {
        var compose = ComposeTree(tf, backend, options, progress);
        if (tf.ContainerCmd is { } cmd)
            buildOptions = buildOptions with { BaseConfig = new ContainerConfig { Cmd = cmd.ToList() } };
        var image = OstreeImageExport.Export(OstreeRepo.Open(options.RepoPath), compose.Commit, output, buildOptions, progress);
        return (compose, image);
    }

    /// <summary>rpm-ostree style: prefix, then prefix.1, prefix.2 ... against the ref's previous version.</summary>
    public static string NextVersion(string prefix, string? previous)
    {
        if (previous == null || !(previous == prefix || previous.StartsWith(prefix + ".", StringComparison.Ordinal))) return prefix;
        if (previous == prefix) return prefix + ".1";
        var rest = previous[(prefix.Length + 1)..];
        return int.TryParse(rest, out var n) && n >= 0 ? $"{prefix}.{n + 1}" : prefix;
    }

    private static string? PreviousVersion(OstreeRepo repo, string refName)
    {
        if (!repo.ListRefs().TryGetValue(refName, out var head)) return null;
        return repo.ReadCommit(head).MetadataString("version");
    }

    /// <summary>OSTree commits cannot hold device nodes; like rpm-ostree, the image's /dev is an empty mount point.</summary>
    private static void EmptyDev(string rootfs)
    {
        var dev = Path.Join(rootfs, "dev");
        if (!Directory.Exists(dev) || LibC.LStat(dev).IsSymlink) return;
        foreach (var entry in Directory.EnumerateFileSystemEntries(dev))
        {
            var st = LibC.LStat(entry);
            if (st.IsDirectory) Directory.Delete(entry, recursive: true);
            else File.Delete(entry);
        }
    }

    private static string InTree(string rootfs, string path, string what)
    {
        var normalized = TreePaths.Normalize(path) ?? throw new TreechunkException($"{what} '{path}' leaves the tree");
        if (normalized.Length == 0) throw new TreechunkException($"{what} '{path}' names the root directory");
        // Never follow a symlink out of the rootfs while editing it.
        var current = rootfs;
        foreach (var part in TreePaths.Ancestors(normalized))
        {
            current = Path.Join(rootfs, part);
            if (LibC.TryLStat(current) is { IsSymlink: true })
                throw new TreechunkException($"{what} '{path}' goes through the symlink /{part}");
        }
        return Path.Join(rootfs, normalized);
    }

    private static void AddFiles(Treefile tf, string rootfs)
    {
        foreach (var (source, destination) in tf.AddFiles)
        {
            var target = InTree(rootfs, destination, "add-files destination");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (!File.Exists(source)) throw new TreechunkException($"add-files source {source} does not exist");
            File.Copy(source, target, overwrite: true);
            LibC.Chmod(target, LibC.LStat(source).Permissions);
        }
    }

    private static void RemoveFiles(Treefile tf, string rootfs)
    {
        foreach (var path in tf.RemoveFiles)
        {
            var target = InTree(rootfs, path, "remove-files entry");
            if (LibC.TryLStat(target) is not { } st) continue;
            if (st.IsDirectory) Directory.Delete(target, recursive: true);
            else File.Delete(target);
        }
    }

    /// <summary>systemctl enable, offline: a symlink in each WantedBy/RequiredBy target's .wants/.requires dir.</summary>
    private static void EnableUnits(Treefile tf, string rootfs, Action<string>? warn)
    {
        string[] unitDirs = ["etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"];
        foreach (var unit in tf.Units)
        {
            if (unit.Contains('/') || unit.StartsWith('.')) throw new TreechunkException($"invalid unit name '{unit}'");
            var found = unitDirs.Select(d => (Dir: d, Path: Path.Join(rootfs, d, unit))).FirstOrDefault(x => File.Exists(x.Path));
            if (found.Path == null) throw new TreechunkException($"units: {unit} is not installed in the tree (looked in /{string.Join(", /", unitDirs)})");
            bool linked = false;
            foreach (var line in File.ReadLines(found.Path))
            {
                var l = line.Trim();
                foreach (var (key, suffix) in new[] { ("WantedBy=", ".wants"), ("RequiredBy=", ".requires") })
                {
                    if (!l.StartsWith(key, StringComparison.Ordinal)) continue;
                    foreach (var target in l[key.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        var dir = Path.Join(rootfs, "etc/systemd/system", target + suffix);
                        Directory.CreateDirectory(dir);
                        var link = Path.Join(dir, unit);
                        if (LibC.TryLStat(link) != null) File.Delete(link);
                        File.CreateSymbolicLink(link, "/" + found.Dir + "/" + unit);
                        linked = true;
                    }
                }
            }
            if (!linked) warn?.Invoke($"units: {unit} has no [Install] WantedBy/RequiredBy; nothing to enable");
        }
    }

    private static void RunPostprocess(Treefile tf, string rootfs, ComposeOptions options)
    {
        for (int i = 0; i < tf.Postprocess.Count; i++)
        {
            var scriptName = $"treechunk-postprocess-{i + 1}.sh";
            var tmp = Path.Join(rootfs, "tmp");
            Directory.CreateDirectory(tmp);
            var script = Path.Join(tmp, scriptName);
            File.WriteAllText(script, tf.Postprocess[i]);
            try
            {
                var env = new Dictionary<string, string?> { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin" };
                if (options.SourceDateEpoch is { } epoch) env["SOURCE_DATE_EPOCH"] = epoch.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var result = ProcessRunner.Run("chroot", [rootfs, "/bin/sh", "-e", "/tmp/" + scriptName], env, options.Output, "chroot is part of coreutils");
                if (result.ExitCode != 0)
                    throw new TreechunkException($"postprocess script {i + 1} failed with exit code {result.ExitCode}: {result.LastError}");
            }
            finally
            {
                File.Delete(script);
            }
        }
    }
}
