using Treechunk.IO;
using System.Buffers.Binary;
using System.Text;
using Microsoft.Data.Sqlite;
using Treechunk.Trees;

namespace Treechunk.Packages;

/// <summary>
/// The sqlite rpm database of a Fedora-family tree. Headers are parsed here rather than through
/// librpm so that reading an image needs no rpm installation and no trust in its headers.
/// </summary>
public sealed class RpmDatabase : IPackageDatabase
{
    /// <summary>Where rpm keeps the sqlite database: the current location first, then the pre-Fedora-36 one.</summary>
    public static readonly IReadOnlyList<string> SqlitePaths = ["usr/lib/sysimage/rpm/rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite"];

    // Berkeley DB (EL 7/8) and ndb (openSUSE) databases we recognise but cannot read.
    private static readonly string[] OtherBackendPaths =
    [
        "usr/lib/sysimage/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages",
        "var/lib/rpm/Packages.db", "var/lib/rpm/Packages",
    ];

    public string Kind => "rpm";
    public IReadOnlyDictionary<string, string> OwnerOf => _owners;

    private readonly EntryOwners _owners;

    public string? OwnerOfEntry(TreeEntry entry) => _owners.Of(entry);
    public IReadOnlyDictionary<string, PackageComponent> Components { get; }

    private RpmDatabase(EntryOwners ownerOf, SortedDictionary<string, PackageComponent> components)
    {
        _owners = ownerOf;
        Components = components;
    }

    /// <summary>Reads the database, or returns null when the tree has no sqlite rpm database.</summary>
    public static RpmDatabase? TryOpen(ITree tree, Action<string>? warn = null)
    {
        foreach (var path in SqlitePaths)
        {
            var entry = OwnershipBuilder.FindFile(tree, path);
            if (entry == null) continue;
            var headers = ReadHeaderBlobs(tree, entry);
            return FromHeaders(tree, headers, entry.Path);
        }
        foreach (var path in OtherBackendPaths)
        {
            if (OwnershipBuilder.FindFile(tree, path) == null) continue;
            warn?.Invoke($"rpm database {path} uses a backend other than sqlite, which is not supported; files are grouped without package information " +
                         "(convert it with: rpmdb --rebuilddb --define '_db_backend sqlite')");
            return null;
        }
        return null;
    }

    /// <summary>Builds the ownership map from (hnum, header blob) rows.</summary>
    internal static RpmDatabase FromHeaders(ITree tree, IEnumerable<(long Hnum, byte[] Blob)> rows, string dbPath)
    {
        var packages = new List<RpmPackage>();
        foreach (var (hnum, blob) in rows)
        {
            var header = RpmHeader.Parse(blob, $"rpm database {dbPath}: package header {hnum}");
            var pkg = RpmPackage.From(header, hnum);
            // Packages without a source (gpg-pubkey pseudo-packages) carry no files.
            if (pkg != null) packages.Add(pkg);
        }
        // Ordinal name order decides shared paths; hnum orders two installed versions of one name
        // (kernels) the way rpm itself would list them.
        packages.Sort((a, b) =>
        {
            int c = string.CompareOrdinal(a.Name, b.Name);
            return c != 0 ? c : a.Hnum.CompareTo(b.Hnum);
        });

        var owners = new OwnershipBuilder(tree);
        var members = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        var times = new Dictionary<string, HashSet<long>>(StringComparer.Ordinal);
        foreach (var pkg in packages)
        {
            owners.AddPackage(pkg.Component, pkg.Files);
            if (!members.TryGetValue(pkg.Component, out var names))
            {
                members[pkg.Component] = names = new SortedSet<string>(StringComparer.Ordinal);
                times[pkg.Component] = [];
            }
            names.Add(pkg.Name);
            times[pkg.Component].UnionWith(pkg.ChangeTimes);
        }

        var components = new SortedDictionary<string, PackageComponent>(StringComparer.Ordinal);
        foreach (var (source, names) in members)
            components[source] = new PackageComponent(source, names.ToList(),
                times[source].OrderByDescending(t => t).ToList());
        return new RpmDatabase(owners.Build(), components);
    }

    /// <summary>
    /// All rows of the Packages table. sqlite needs a real file: a database in a directory tree is
    /// read in place when that cannot write anything (rollback-journal mode, no hot journal);
    /// otherwise, and always for trees that are not directories, it is copied to a scratch
    /// directory first. rpm keeps its database in WAL mode, where even a read-only reader
    /// creates or updates the -shm file, and the tree must stay byte-for-byte as it was.
    /// </summary>
    private static List<(long, byte[])> ReadHeaderBlobs(ITree tree, TreeEntry db)
    {
        var wal = OwnershipBuilder.FindFile(tree, db.Path + "-wal");
        var journal = tree.Find(db.Path + "-journal");
        if (tree is DirectoryTree dir && wal == null && journal == null && IsRollbackJournalMode(tree, db))
            return Query(Path.Join(dir.RootPath, db.Path), readOnly: true, db.Path);

        using var scratch = TempDirectory.Create("rpmdb");
        var copy = Path.Join(scratch.Path, "rpmdb.sqlite");
        CopyOut(tree, db, copy);
        // An empty WAL holds nothing to replay; a non-empty one holds committed transactions
        // that are part of the database, so it travels with the copy.
        if (wal is { Size: > 0 }) CopyOut(tree, wal, copy + "-wal");
        return Query(copy, readOnly: false, db.Path);
    }

    private static void CopyOut(ITree tree, TreeEntry entry, string destination)
    {
        using var source = tree.OpenContent(entry);
        using var target = new FileStream(destination, FileMode.CreateNew, FileAccess.Write);
        source.CopyTo(target);
    }

    /// <summary>True when the sqlite header's read/write versions (bytes 18 and 19) say rollback journal, not WAL.</summary>
    private static bool IsRollbackJournalMode(ITree tree, TreeEntry db)
    {
        var header = new byte[100];
        using var stream = tree.OpenContent(db);
        int read = 0;
        for (int n; read < header.Length && (n = stream.Read(header, read, header.Length - read)) > 0;) read += n;
        return read == header.Length && header[18] == 1 && header[19] == 1;
    }

    /// <summary>
    /// Every installed package of an rpm sqlite database file (a scanner's view: name, EVR, arch
    /// and source rpm; gpg-pubkey pseudo-packages, which have no source rpm, are left out).
    /// </summary>
    /// <param name="treePath">The database's path in its image, for messages.</param>
    internal static List<RpmInstalled> ReadInstalled(string file, string treePath)
    {
        var result = new List<RpmInstalled>();
        foreach (var (hnum, blob) in Query(file, readOnly: false, treePath))
        {
            var h = RpmHeader.Parse(blob, $"rpm database {treePath}: package header {hnum}");
            var source = h.GetString(RpmHeader.TagSourceRpm);
            if (string.IsNullOrEmpty(source)) continue;
            var epoch = h.GetInt32Array(RpmHeader.TagEpoch) is [var e, ..] ? e : (int?)null;
            result.Add(new RpmInstalled(h.GetString(RpmHeader.TagName) ?? throw h.Malformed("no NAME tag"),
                epoch, h.GetString(RpmHeader.TagVersion) ?? "", h.GetString(RpmHeader.TagRelease) ?? "",
                h.GetString(RpmHeader.TagArch) ?? "", source));
        }
        return result;
    }

    private static List<(long, byte[])> Query(string file, bool readOnly, string treePath)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = file,
            Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWrite,
            // Pooled connections keep the file open, which would block deleting the scratch copy.
            Pooling = false,
        };
        var rows = new List<(long, byte[])>();
        try
        {
            using var connection = new SqliteConnection(builder.ConnectionString);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT hnum, blob FROM Packages ORDER BY hnum";
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var hnum = reader.GetInt64(0);
                if (reader.IsDBNull(1))
                    throw new TreechunkException($"rpm database {treePath}: package header {hnum} is empty");
                rows.Add((hnum, (byte[])reader.GetValue(1)));
            }
        }
        catch (SqliteException e)
        {
            throw new TreechunkException($"rpm database {treePath} cannot be read: {e.Message}", ExitCodes.BadInput, e);
        }
        catch (InvalidCastException e)
        {
            throw new TreechunkException($"rpm database {treePath} has a Packages table of an unexpected shape: {e.Message}", ExitCodes.BadInput, e);
        }
        return rows;
    }
}

/// <summary>An installed package's identity as a vulnerability scanner needs it.</summary>
internal sealed record RpmInstalled(string Name, int? Epoch, string Version, string Release, string Arch, string SourceRpm);

/// <summary>The parts of an installed package's header that decide its files' component.</summary>
internal sealed record RpmPackage(long Hnum, string Name, string Component, IReadOnlyList<string> Files, IReadOnlyList<long> ChangeTimes)
{
    public static RpmPackage? From(RpmHeader h, long hnum)
    {
        var name = h.GetString(RpmHeader.TagName) ?? throw h.Malformed("no NAME tag");
        var sourceRpm = h.GetString(RpmHeader.TagSourceRpm);
        if (string.IsNullOrEmpty(sourceRpm)) return null;

        var files = new List<string>();
        var basenames = h.GetStringArray(RpmHeader.TagBaseNames);
        if (basenames != null)
        {
            var dirIndexes = h.GetInt32Array(RpmHeader.TagDirIndexes) ?? throw h.Malformed("BASENAMES without DIRINDEXES");
            var dirNames = h.GetStringArray(RpmHeader.TagDirNames) ?? throw h.Malformed("BASENAMES without DIRNAMES");
            if (dirIndexes.Length != basenames.Length)
                throw h.Malformed($"{basenames.Length} BASENAMES but {dirIndexes.Length} DIRINDEXES");
            for (int i = 0; i < basenames.Length; i++)
            {
                var d = dirIndexes[i];
                if (d < 0 || d >= dirNames.Length)
                    throw h.Malformed($"DIRINDEXES[{i}] = {d} is outside the {dirNames.Length} DIRNAMES");
                files.Add(dirNames[d] + basenames[i]);
            }
        }
        else if (h.GetStringArray(RpmHeader.TagOldFileNames) is { } old)
        {
            files.AddRange(old);
        }

        // CHANGELOGTIME is unsigned seconds in practice; reading it as such keeps post-2038 dates.
        var times = (h.GetInt32Array(RpmHeader.TagChangelogTime) ?? []).Select(t => (long)(uint)t).ToList();
        return new RpmPackage(hnum, name, ComponentOf(sourceRpm, name), files, times);
    }

    /// <summary>"openssl-3.0.7-2.fc38.src.rpm" -> "openssl": drop the suffix, then the version and release fields.</summary>
    internal static string ComponentOf(string sourceRpm, string fallback) => SplitSourceRpm(sourceRpm)?.Name ?? fallback;

    /// <summary>
    /// "openssl-3.0.7-2.fc38.src.rpm" -> ("openssl", "3.0.7-2.fc38"); null when it is not
    /// name-version-release, which says nothing reliable (the binary's own name is safer then).
    /// </summary>
    internal static (string Name, string Version)? SplitSourceRpm(string sourceRpm)
    {
        var s = sourceRpm;
        foreach (var suffix in new[] { ".src.rpm", ".nosrc.rpm" })
            if (s.EndsWith(suffix, StringComparison.Ordinal)) { s = s[..^suffix.Length]; break; }
        var release = s.LastIndexOf('-');
        var version = release > 0 ? s.LastIndexOf('-', release - 1) : -1;
        return version > 0 ? (s[..version], s[(version + 1)..]) : null;
    }
}

/// <summary>
/// An rpm header as stored in the database: index count and data length (big-endian int32),
/// 16-byte index entries (tag, type, offset, count), then the data store. Every offset and
/// count is checked against the store, so a damaged blob is reported, not dereferenced.
/// </summary>
internal sealed class RpmHeader
{
    public const int TagName = 1000, TagVersion = 1001, TagRelease = 1002, TagEpoch = 1003, TagArch = 1022, TagOldFileNames = 1027,
        TagSourceRpm = 1044, TagChangelogTime = 1080, TagDirIndexes = 1116, TagBaseNames = 1117, TagDirNames = 1118;

    private const int TypeInt16 = 3, TypeInt32 = 4, TypeString = 6, TypeBin = 7, TypeStringArray = 8, TypeI18nString = 9;

    // Same ceiling rpm applies to a header (256 MiB data, 64 Ki tags): beyond it a blob is damage, not data.
    private const int MaxIndexCount = 0x10000, MaxDataLength = 0x10000000;

    private readonly byte[] _blob;
    private readonly int _dataStart;
    private readonly int _dataLength;
    private readonly string _what;
    private readonly Dictionary<int, (int Type, int Offset, int Count)> _index = new();

    private RpmHeader(byte[] blob, int dataStart, int dataLength, string what)
    {
        _blob = blob;
        _dataStart = dataStart;
        _dataLength = dataLength;
        _what = what;
    }

    public TreechunkException Malformed(string reason) => new($"{_what} is malformed: {reason}");

    /// <param name="what">Names the header in errors, e.g. "rpm database X: package header 12".</param>
    public static RpmHeader Parse(byte[] blob, string what)
    {
        if (blob.Length < 8) throw new TreechunkException($"{what} is malformed: {blob.Length} bytes is too short for a header");
        int il = BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(0));
        int dl = BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(4));
        if (il < 1 || il > MaxIndexCount || dl < 0 || dl > MaxDataLength)
            throw new TreechunkException($"{what} is malformed: index count {il}, data length {dl}");
        long needed = 8 + 16L * il + dl;
        if (needed > blob.Length)
            throw new TreechunkException($"{what} is malformed: it declares {needed} bytes but has {blob.Length}");

        var header = new RpmHeader(blob, 8 + 16 * il, dl, what);
        for (int i = 0; i < il; i++)
        {
            var e = blob.AsSpan(8 + 16 * i, 16);
            int tag = BinaryPrimitives.ReadInt32BigEndian(e);
            int type = BinaryPrimitives.ReadInt32BigEndian(e[4..]);
            int offset = BinaryPrimitives.ReadInt32BigEndian(e[8..]);
            int count = BinaryPrimitives.ReadInt32BigEndian(e[12..]);
            // Region tags (61-63) describe signed/immutable spans, not package data.
            if (tag is >= 61 and <= 63) continue;
            if (offset < 0 || offset > dl || count < 0 || count > dl)
                throw header.Malformed($"tag {tag} has offset {offset} and count {count} outside the {dl}-byte data store");
            if (type is < 0 or > TypeI18nString)
                throw header.Malformed($"tag {tag} has unknown type {type}");
            // First occurrence wins, as in rpm.
            header._index.TryAdd(tag, (type, offset, count));
        }
        return header;
    }

    public string? GetString(int tag)
    {
        if (!_index.TryGetValue(tag, out var e)) return null;
        if (e.Type is not (TypeString or TypeStringArray or TypeI18nString))
            throw Malformed($"tag {tag} has type {e.Type}, expected a string");
        if (e.Count < 1) throw Malformed($"tag {tag} holds no string");
        return ReadStrings(tag, e.Offset, 1)[0];
    }

    public string[]? GetStringArray(int tag)
    {
        if (!_index.TryGetValue(tag, out var e)) return null;
        if (e.Type is not (TypeString or TypeStringArray or TypeI18nString))
            throw Malformed($"tag {tag} has type {e.Type}, expected strings");
        return ReadStrings(tag, e.Offset, e.Type == TypeString ? 1 : e.Count);
    }

    public int[]? GetInt32Array(int tag)
    {
        if (!_index.TryGetValue(tag, out var e)) return null;
        if (e.Type != TypeInt32) throw Malformed($"tag {tag} has type {e.Type}, expected INT32");
        if ((long)e.Offset + 4L * e.Count > _dataLength)
            throw Malformed($"tag {tag}: {e.Count} INT32 values at offset {e.Offset} run past the {_dataLength}-byte data store");
        var values = new int[e.Count];
        for (int i = 0; i < values.Length; i++)
            values[i] = BinaryPrimitives.ReadInt32BigEndian(_blob.AsSpan(_dataStart + e.Offset + 4 * i));
        return values;
    }

    private string[] ReadStrings(int tag, int offset, int count)
    {
        var data = _blob.AsSpan(_dataStart, _dataLength);
        var result = new string[count];
        int pos = offset;
        for (int i = 0; i < count; i++)
        {
            if (pos >= data.Length)
                throw Malformed($"tag {tag}: string {i} of {count} starts past the data store");
            int nul = data[pos..].IndexOf((byte)0);
            if (nul < 0) throw Malformed($"tag {tag}: string {i} of {count} is not terminated");
            // Strings include file names, which are bytes: decoded losslessly to match the tree.
            result[i] = Posix.FileNames.Decode(data.Slice(pos, nul));
            pos += nul + 1;
        }
        return result;
    }
}
