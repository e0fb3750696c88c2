using Treechunk.IO;
using System.Text;
using System.Text.RegularExpressions;

namespace Treechunk.Compose;

/// <summary>
/// Installs Debian packages with mmdebstrap (minbase plus the treefile's packages), whose
/// directory output is already reproducible for a given SOURCE_DATE_EPOCH; what it leaves that an
/// image must not carry is removed afterwards.
/// </summary>
public sealed partial class AptBackend : IPackageBackend
{
    public string Name => "apt";

    private const string ExcludePreferences = "etc/apt/preferences.d/treechunk-exclude";
    private const string Archives = "var/cache/apt/archives";

    public BackendResult Install(Treefile treefile, string rootfs, BackendOptions options)
    {
        var sources = treefile.Repos.Where(r => r.Kind == RepoKind.Apt).Select(r => Path.GetFullPath(r.Path)).ToList();
        if (sources.Count == 0) throw new TreechunkException($"treefile {treefile.Path} names no apt repos");
        foreach (var s in sources)
            if (!File.Exists(s)) throw new TreechunkException($"treefile {treefile.Path}: apt source {s} does not exist");
        var suite = FirstSuite(sources[0])
            ?? throw new TreechunkException($"treefile {treefile.Path}: {sources[0]} has no Suites field");
        var variant = treefile.Variant ?? "minbase";
        if (!Variants.Contains(variant))
            throw new TreechunkException($"treefile {treefile.Path}: variant '{variant}' is not an mmdebstrap variant ({string.Join(", ", Variants)})");
        foreach (var name in treefile.ExcludePackages)
            if (!PackageName().IsMatch(name))
                throw new TreechunkException($"treefile {treefile.Path}: exclude-packages entry '{name}' is not a Debian package name");
        rootfs = Path.GetFullPath(rootfs);
        var cache = options.CacheDir == null ? null : Path.GetFullPath(options.CacheDir);

        var scratchDir = TempDirectory.Create("apt");
        var scratch = scratchDir.Path;
        try
        {
            var args = new List<string>();
            if (treefile.ExcludePackages.Count == 0 || variant != "minbase")
            {
                // Outside minbase the exclusions are enforced by the pin below alone.
                args.Add("--variant=" + variant);
                if (treefile.ExcludePackages.Count > 0) AddExcludePin(args, scratch, treefile.ExcludePackages);
            }
            else
            {
                // minbase installs every Priority: required package through a pattern that a
                // pin cannot veto (the package would be "requested but has no candidate"), so
                // the same set is spelled out here without the excluded names: essential plus
                // apt plus the rest of required, as mmdebstrap's minbase does.
                args.Add("--variant=essential");
                if (!treefile.ExcludePackages.Contains("apt")) args.Add("--include=apt");
                args.Add("--include=" + RequiredPattern(suite, options.Architecture?.Debian, treefile.ExcludePackages));
                AddExcludePin(args, scratch, treefile.ExcludePackages);
            }
            // One --include per entry: mmdebstrap splits an argument on commas unless it is a
            // pattern, so this passes names and patterns alike unchanged.
            foreach (var p in treefile.Packages) args.Add("--include=" + p);
            if (options.Architecture != null) args.Add("--architectures=" + options.Architecture.Debian);

            HashSet<string> cachedBefore = [];
            if (cache != null)
            {
                Directory.CreateDirectory(cache);
                cachedBefore = DebsIn(cache);
                // mmdebstrap's documented cache pattern: the archives directory starts filled
                // (so the emptiness check is skipped), downloaded essential packages are kept
                // for the customize hook, which copies everything back out before the cleanup
                // step empties the directory in the tree.
                args.Add("--skip=download/empty");
                args.Add("--skip=essential/unlink");
                args.Add($"--setup-hook=mkdir -p \"$1/{Archives}/\"");
                args.Add($"--setup-hook=sync-in {Quote(cache)} /{Archives}/");
                args.Add($"--customize-hook=sync-out /{Archives} {Quote(cache)}");
            }
            args.Add(suite);
            args.Add(rootfs);
            args.AddRange(sources);

            var env = new Dictionary<string, string?>
            {
                ["SOURCE_DATE_EPOCH"] = options.SourceDateEpoch.ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
            var result = ProcessRunner.Run("mmdebstrap", args, env, options.Output, "install it with: apt-get install mmdebstrap");
            if (result.ExitCode != 0) throw Failure(result, treefile.ExcludePackages);

            Clean(rootfs);

            var installed = InstalledPackages(rootfs);
            var leaked = treefile.ExcludePackages.Where(e => installed.Any(i => i.Name == e)).ToList();
            if (leaked.Count > 0)
                throw new TreechunkException($"exclude-packages: {string.Join(", ", leaked)} installed anyway (mmdebstrap installs the Essential set regardless of pins)");
            int fromCache = installed.Count(i => cachedBefore.Contains(i.DebFileName));
            return new BackendResult(installed.Count, fromCache, installed.Count - fromCache);
        }
        finally
        {
            scratchDir.Dispose();
        }
    }

    /// <summary>
    /// What mmdebstrap's own cleanup leaves that must not reach an image. mmdebstrap already
    /// empties etc/machine-id and removes lists, archives and logs of its own; this repeats those
    /// so the result does not depend on the mmdebstrap version.
    /// </summary>
    internal static void Clean(string rootfs)
    {
        var c = new RootfsCleaner(rootfs);
        c.Delete(ExcludePreferences);
        c.DeleteIn("var/lib/apt/lists");
        c.DeleteIn("var/cache/apt", "*.bin");
        c.DeleteIn(Archives, "*.deb");
        c.DeleteIn(Archives + "/partial");
        // Logs go, but the empty btmp/wtmp/lastlog/faillog that base packages create stay: their
        // group and mode (root:utmp 0660/0664) are what login and sshd expect, and an empty file
        // is the same in every build.
        c.DeleteFilesBelow("var/log", keepEmptyFiles: true);
        c.Delete("var/cache/ldconfig/aux-cache");
        // Present but empty is what images ship: systemd then generates an id on first boot.
        c.Truncate("etc/machine-id");
        c.Delete("var/lib/dbus/machine-id");
        // Backups of the previous state of dpkg's and debconf's databases: not needed to use them.
        c.DeleteIn("var/lib/dpkg", "*-old");
        c.DeleteIn("var/cache/debconf", "*-old");
        c.DeleteIn("tmp");
    }

    internal sealed record Installed(string Name, string Version, string Architecture)
    {
        /// <summary>The name apt gives the downloaded archive (the epoch colon is URL-escaped).</summary>
        public string DebFileName => $"{Name}_{Version.Replace(":", "%3a")}_{Architecture}.deb";
    }

    internal static List<Installed> InstalledPackages(string rootfs)
    {
        var status = Path.Join(rootfs, "var/lib/dpkg/status");
        if (!File.Exists(status)) throw new TreechunkException($"mmdebstrap left no dpkg status in {rootfs}", ExitCodes.EnvironmentError);
        var list = new List<Installed>();
        foreach (var stanza in File.ReadAllText(status).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string? name = null, version = null, arch = null, state = null;
            foreach (var line in stanza.Split('\n'))
            {
                var colon = line.IndexOf(':');
                if (colon <= 0 || line[0] is ' ' or '\t') continue;
                var value = line[(colon + 1)..].Trim();
                switch (line[..colon])
                {
                    case "Package": name = value; break;
                    case "Version": version = value; break;
                    case "Architecture": arch = value; break;
                    case "Status": state = value; break;
                }
            }
            if (name != null && version != null && arch != null && state != null && state.EndsWith(" installed", StringComparison.Ordinal))
                list.Add(new Installed(name, version, arch));
        }
        return list;
    }

    private static HashSet<string> DebsIn(string dir) =>
        Directory.EnumerateFiles(dir, "*.deb").Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal)!;

    /// <summary>mmdebstrap's variants (treefile key <c>variant</c>; default minbase).</summary>
    private static readonly string[] Variants = ["extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important", "debootstrap", "standard"];

    /// <summary>
    /// A Pin-Priority -1 for each excluded package makes apt refuse them as dependencies too,
    /// with its own explanation, instead of pulling them in silently.
    /// </summary>
    private static void AddExcludePin(List<string> args, string scratch, IEnumerable<string> excluded)
    {
        var pins = Path.Join(scratch, "treechunk-exclude");
        File.WriteAllText(pins, string.Concat(excluded.Select(p => $"Package: {p}\nPin: release *\nPin-Priority: -1\n\n")));
        args.Add($"--setup-hook=mkdir -p \"$1/etc/apt/preferences.d\" && cp {Quote(pins)} \"$1/{ExcludePreferences}\"");
        // The pin is compose input, not part of the system: later apt runs in the image must not inherit it.
        args.Add($"--customize-hook=rm -f \"$1/{ExcludePreferences}\"");
    }

    /// <summary>The first suite of the first stanza of a deb822 .sources file.</summary>
    internal static string? FirstSuite(string sourcesFile)
    {
        foreach (var raw in File.ReadLines(sourcesFile))
        {
            if (raw.StartsWith('#') || !raw.StartsWith("Suites:", StringComparison.OrdinalIgnoreCase)) continue;
            var suites = raw["Suites:".Length..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (suites.Length > 0) return suites[0];
        }
        return null;
    }

    /// <summary>mmdebstrap's minbase pattern for Priority: required, less the excluded names.</summary>
    internal static string RequiredPattern(string suite, string? architecture, IEnumerable<string> excluded)
    {
        // apt patterns take POSIX regular expressions here; the suite name may hold dots.
        var s = Regex.Replace(suite, @"[.+]", @"\$0");
        var sb = new StringBuilder($"?narrow(?or(?archive(^{s}$),?codename(^{s}$)),");
        var arch = architecture?.Split(',', ' ')[0];
        if (!string.IsNullOrEmpty(arch)) sb.Append($"?architecture({arch}),");
        sb.Append("?and(?priority(required),?not(?essential)");
        foreach (var e in excluded) sb.Append($",?not(?exact-name({e}))");
        sb.Append("))");
        return sb.ToString();
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    // mmdebstrap's own summaries of a failed step; apt's explanation comes before them.
    private static readonly string[] WrapperPrefixes = ["E: setup failed", "E: mmdebstrap failed", "E: apt download failed", "E: main() ", "E: run_"];

    internal static TreechunkException Failure(ProcessRunner.Result result, IReadOnlyList<string> excluded)
    {
        var lines = result.Lines;
        var own = lines.Where(l => l.StartsWith("E: ", StringComparison.Ordinal)
                                   && !WrapperPrefixes.Any(p => l.StartsWith(p, StringComparison.Ordinal))
                                   && !l.TrimEnd().EndsWith(" failed", StringComparison.Ordinal)).ToList();
        var parts = new List<string>();
        if (own.Count > 0)
        {
            parts.AddRange(own);
            // An unsatisfiable dependency is explained in the lines before the generic E: line.
            int start = lines.ToList().FindIndex(l => l.StartsWith("The following packages have unmet dependencies", StringComparison.Ordinal));
            if (start >= 0)
                parts.AddRange(lines.Skip(start + 1).TakeWhile(l => l.StartsWith(' ')));
        }
        else
        {
            var any = lines.FirstOrDefault(l => l.StartsWith("E: ", StringComparison.Ordinal))
                      ?? lines.LastOrDefault(l => l.Trim().Length > 0) ?? "no output";
            parts.Add(any);
        }
        var message = ProcessRunner.OneLine(parts);
        var mentioned = excluded.Where(e => Regex.IsMatch(message, $@"(^|[\s'(]){Regex.Escape(e)}($|[\s':)])")).ToList();
        if (mentioned.Count > 0) message += $" ({string.Join(", ", mentioned)} in exclude-packages)";
        bool badInput = BadInputMessage().IsMatch(message);
        return new TreechunkException($"mmdebstrap failed (exit {result.ExitCode}): {message}",
            badInput ? ExitCodes.BadInput : ExitCodes.EnvironmentError);
    }

    [GeneratedRegex(@"Unable to locate package|has no installation candidate|Unable to correct problems|unmet dependencies|is not installable|Couldn't find any package|Version '[^']*' for '[^']*' was not found")]
    private static partial Regex BadInputMessage();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9+.-]+$")]
    private static partial Regex PackageName();
}
