using System.Buffers;
using System.IO.Compression;
using System.Text;
using Treechunk.Trees;

namespace Treechunk.Packages;

/// <summary>
/// The dpkg database of a Debian-family tree: var/lib/dpkg/status for what is installed and
/// var/lib/dpkg/info/*.list for the files of each package. Read through the tree's streams only,
/// so it works the same on a directory, an image or a commit.
/// </summary>
public sealed class DpkgDatabase : IPackageDatabase
{
    public const string StatusPath = "var/lib/dpkg/status";
    private const string InfoDir = "var/lib/dpkg/info";

    // Want states do not matter (a held or to-be-removed package is still on disk); these are
    // the status states in which the package's files are unpacked. "config-files" and
    // "not-installed" leave only conffiles or nothing, so they own nothing.
    private static readonly HashSet<string> StatesWithFiles = new(StringComparer.Ordinal)
    {
        "installed", "triggers-pending", "triggers-awaited", "half-configured", "unpacked",
    };

    public string Kind => "dpkg";
    public IReadOnlyDictionary<string, string> OwnerOf => _owners;

    private readonly EntryOwners _owners;

    public string? OwnerOfEntry(TreeEntry entry) => _owners.Of(entry);
    public IReadOnlyDictionary<string, PackageComponent> Components { get; }

    private DpkgDatabase(EntryOwners ownerOf, SortedDictionary<string, PackageComponent> components)
    {
        _owners = ownerOf;
        Components = components;
    }

    /// <summary>One installed binary package as the status file describes it.</summary>
    /// <param name="SourceVersion">From "Source: name (version)", else the binary's own version.</param>
    internal sealed record Package(string Name, string Architecture, string Source, bool MultiArchSame, string Version = "", string SourceVersion = "");

    /// <summary>Reads the database, or returns null when the tree has no dpkg status file.</summary>
    public static DpkgDatabase? TryOpen(ITree tree)
    {
        using var status = OwnershipBuilder.OpenFile(tree, StatusPath);
        if (status == null) return null;
        var packages = ParseStatus(status);

        // Ordinal (name, arch) order makes the first claim on a shared path reproducible.
        packages.Sort((a, b) =>
        {
            int c = string.CompareOrdinal(a.Name, b.Name);
            return c != 0 ? c : string.CompareOrdinal(a.Architecture, b.Architecture);
        });

        // Reading the file lists is independent per package; only the ownership claims below
        // must follow the sorted order.
        var lists = new OwnershipBuilder.RecordedPaths[packages.Count];
        Parallel.For(0, packages.Count, i => lists[i] = ReadList(tree, packages[i]));

        // Change history means inflating every package's changelog, which only planning reads.
        // It starts now, in the background, because the ownership and component work that comes
        // first is single-threaded: on two cores the second one would otherwise idle. Planning
        // waits for it (while the tree is still open).
        var reading = Task.Run(() => ReadChangeHistory(tree, packages));
        var history = new Lazy<Dictionary<string, List<long>>>(() => reading.GetAwaiter().GetResult());

        var owners = new OwnershipBuilder(tree);
        var members = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        for (int i = 0; i < packages.Count; i++)
        {
            var pkg = packages[i];
            owners.AddPackage(pkg.Source, lists[i]);
            if (!members.TryGetValue(pkg.Source, out var names))
                members[pkg.Source] = names = new SortedSet<string>(StringComparer.Ordinal);
            names.Add(pkg.Name);
        }

        var components = new SortedDictionary<string, PackageComponent>(StringComparer.Ordinal);
        foreach (var (source, names) in members)
            components[source] = new PackageComponent(source, names.ToList(), new LazyChangeTimes(history, source));
        return new DpkgDatabase(owners.Build(), components);
    }

    /// <summary>Each source package's changelog entry times, newest first and distinct.</summary>
    private static Dictionary<string, List<long>> ReadChangeHistory(ITree tree, List<Package> packages)
    {
        var perPackage = new List<long>[packages.Count];
        Parallel.For(0, packages.Count, i => perPackage[i] = ReadChangeTimes(tree, packages[i]));
        var bySource = new Dictionary<string, HashSet<long>>(StringComparer.Ordinal);
        for (int i = 0; i < packages.Count; i++)
        {
            if (!bySource.TryGetValue(packages[i].Source, out var set)) bySource[packages[i].Source] = set = [];
            set.UnionWith(perPackage[i]);
        }
        return bySource.ToDictionary(kv => kv.Key, kv => kv.Value.OrderByDescending(t => t).ToList(), StringComparer.Ordinal);
    }

    /// <summary>One source package's view of the change history, which is read when first enumerated.</summary>
    private sealed class LazyChangeTimes(Lazy<Dictionary<string, List<long>>> history, string source) : IReadOnlyList<long>
    {
        private List<long> Times => history.Value[source];
        public long this[int index] => Times[index];
        public int Count => Times.Count;
        public IEnumerator<long> GetEnumerator() => Times.GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>The packages of a status file whose files are on disk, in file order.</summary>
    internal static List<Package> ParseStatus(Stream status)
    {
        var result = new List<Package>();
        using var reader = new StreamReader(status, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false);
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        string? lastField = null;
        int lineNo = 0;

        void EndParagraph()
        {
            if (fields.Count > 0) AddPackage(fields, result);
            fields.Clear();
            lastField = null;
        }

        for (string? line; (line = reader.ReadLine()) != null;)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
            {
                EndParagraph();
                continue;
            }
            if (line[0] is ' ' or '\t')
            {
                // Continuation lines only extend multi-line fields such as Description and
                // Conffiles, none of which we read; keep them anyway so the model is faithful.
                if (lastField == null)
                    throw new TreechunkException($"{StatusPath}:{lineNo}: continuation line outside a field");
                fields[lastField] += "\n" + line;
                continue;
            }
            if (line[0] == '#') continue;
            var colon = line.IndexOf(':');
            if (colon <= 0)
                throw new TreechunkException($"{StatusPath}:{lineNo}: expected 'Field: value', got '{Truncate(line)}'");
            lastField = line[..colon].Trim();
            fields[lastField] = line[(colon + 1)..].Trim();
        }
        EndParagraph();
        return result;
    }

    private static void AddPackage(Dictionary<string, string> fields, List<Package> result)
    {
        if (!fields.TryGetValue("Package", out var name) || name.Length == 0) return;
        if (!fields.TryGetValue("Status", out var status)) return;
        var words = status.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length != 3 || !StatesWithFiles.Contains(words[2])) return;

        var version = fields.GetValueOrDefault("Version", "");
        var source = fields.GetValueOrDefault("Source", "");
        var sourceVersion = version;
        // "Source: bash (5.2.15-2)" names the source version when it differs from the binary's.
        var paren = source.IndexOf('(');
        if (paren >= 0)
        {
            var close = source.IndexOf(')', paren);
            if (close > paren + 1) sourceVersion = source[(paren + 1)..close].Trim();
            source = source[..paren];
        }
        source = source.Trim();
        if (source.Length == 0) source = name;

        var arch = fields.GetValueOrDefault("Architecture", "");
        var multiArch = fields.GetValueOrDefault("Multi-Arch", "");
        result.Add(new Package(name, arch, source, multiArch == "same", version, sourceVersion));
    }

    /// <summary>
    /// The paths a package's .list file records. dpkg names the file "pkg:arch.list" for
    /// Multi-Arch: same packages and "pkg.list" otherwise; both are tried because databases
    /// converted across dpkg versions are not always consistent.
    /// </summary>
    private static OwnershipBuilder.RecordedPaths ReadList(ITree tree, Package pkg)
    {
        var plain = $"{InfoDir}/{pkg.Name}.list";
        var qualified = $"{InfoDir}/{pkg.Name}:{pkg.Architecture}.list";
        string[] candidates = pkg.MultiArchSame ? [qualified, plain] : [plain, qualified];
        foreach (var candidate in candidates)
        {
            using var stream = OwnershipBuilder.OpenFile(tree, candidate);
            if (stream == null) continue;
            // Lines are file names, which are bytes (Latin-1 names exist): decoded losslessly so
            // they match the tree's paths.
            var paths = new OwnershipBuilder.RecordedPaths(tree);
            using var all = new MemoryStream();
            stream.CopyTo(all);
            foreach (var line in all.GetBuffer().AsSpan(0, (int)all.Length).Split((byte)'\n'))
            {
                var bytes = all.GetBuffer().AsSpan(0, (int)all.Length)[line];
                if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
                if (bytes.Length > 0) paths.Add(Posix.FileNames.Decode(bytes));
            }
            return paths;
        }
        // A package can be installed with no list (stripped images): it simply owns nothing.
        return new OwnershipBuilder.RecordedPaths(tree);
    }

    /// <summary>
    /// Entry times from the package's Debian changelogs: changelog.Debian.gz (changelog.gz for
    /// native packages, which have no separate Debian changelog) plus the binNMU changelog.
    /// </summary>
    private static List<long> ReadChangeTimes(ITree tree, Package pkg)
    {
        var doc = $"usr/share/doc/{pkg.Name}";
        var times = new List<long>();
        var debian = OwnershipBuilder.FindFile(tree, $"{doc}/changelog.Debian.gz")
                     ?? OwnershipBuilder.FindFile(tree, $"{doc}/changelog.gz");
        var binNmu = pkg.Architecture.Length > 0 ? OwnershipBuilder.FindFile(tree, $"{doc}/changelog.Debian.{pkg.Architecture}.gz") : null;
        foreach (var entry in new[] { debian, binNmu })
        {
            if (entry == null) continue;
            using var stream = tree.OpenContent(entry);
            times.AddRange(ParseChangelogTimes(stream));
        }
        return times;
    }

    /// <summary>Times of the trailer lines of a gzip-compressed Debian changelog; a damaged file yields what was read.</summary>
    /// <remarks>
    /// Lines are split as bytes and only trailer lines (" -- ") are decoded: a big tree has
    /// thousands of changelogs, and a string per line of each was most of the planning phase's
    /// garbage. Line breaks are \n, \r or \r\n, as for <see cref="StreamReader.ReadLine"/>.
    /// </remarks>
    internal static List<long> ParseChangelogTimes(Stream gzipped)
    {
        var times = new List<long>();
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            using var gz = new GZipStream(gzipped, CompressionMode.Decompress, leaveOpen: true);
            int filled = 0;
            // True while reading the rest of a line longer than the buffer: no trailer is that long.
            bool skipping = false;
            while (true)
            {
                int n = gz.Read(buffer, filled, buffer.Length - filled);
                bool end = n == 0;
                filled += n;
                int start = 0;
                var data = buffer.AsSpan(0, filled);
                while (true)
                {
                    int brk = data[start..].IndexOfAny((byte)'\n', (byte)'\r');
                    if (brk < 0) break;
                    if (!skipping) AddTrailerTime(data.Slice(start, brk), times);
                    skipping = false;
                    start += brk + 1;
                }
                if (end)
                {
                    if (!skipping) AddTrailerTime(data[start..], times);
                    break;
                }
                if (start == 0 && filled == buffer.Length)
                {
                    skipping = true;
                    filled = 0;
                    continue;
                }
                data[start..].CopyTo(buffer);
                filled -= start;
            }
        }
        catch (InvalidDataException)
        {
            // Change history only tunes layer packing; a corrupt changelog must not stop a build.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return times;
    }

    private static void AddTrailerTime(ReadOnlySpan<byte> line, List<long> times)
    {
        if (line.StartsWith(" -- "u8) && ParseTrailerTime(Encoding.UTF8.GetString(line)) is { } t) times.Add(t);
    }

    private static readonly string[] Months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

    /// <summary>
    /// The date of " -- Name &lt;mail&gt;  Thu, 01 Jun 2023 10:00:00 +0000" as Unix seconds. Hand
    /// parsed because real changelogs vary (single-digit days, wrong weekdays) in ways an exact
    /// format string rejects.
    /// </summary>
    internal static long? ParseTrailerTime(string line)
    {
        var gt = line.LastIndexOf('>');
        if (gt < 0) return null;
        var tokens = line[(gt + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).ToList();
        if (tokens.Count > 0 && tokens[0].EndsWith(',')) tokens.RemoveAt(0);
        if (tokens.Count < 5) return null;
        if (!int.TryParse(tokens[0], out var day)) return null;
        var month = Array.IndexOf(Months, tokens[1].ToLowerInvariant()[..Math.Min(3, tokens[1].Length)]) + 1;
        if (month == 0 || !int.TryParse(tokens[2], out var year)) return null;
        var hms = tokens[3].Split(':');
        if (hms.Length is < 2 or > 3) return null;
        if (!int.TryParse(hms[0], out var hour) || !int.TryParse(hms[1], out var minute)) return null;
        var second = 0;
        if (hms.Length == 3 && !int.TryParse(hms[2], out second)) return null;
        var zone = tokens[4];
        if (zone.Length != 5 || zone[0] is not ('+' or '-') || !int.TryParse(zone.AsSpan(1), out var hhmm)) return null;
        var offset = TimeSpan.FromMinutes((hhmm / 100 * 60 + hhmm % 100) * (zone[0] == '-' ? -1 : 1));
        try
        {
            // Leap seconds ("23:59:60") appear in a few changelogs; fold them into the next second.
            var extra = second == 60 ? 1 : 0;
            var dto = new DateTimeOffset(year, month, day, hour, minute, second - extra, offset);
            return dto.ToUnixTimeSeconds() + extra;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..60] + "...";
}
