using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Treechunk.Ostree;
using Treechunk.Trees;

namespace Treechunk.Cli.Commands;

/// <summary>ostree refs, log, ls, fsck.</summary>
public static class OstreeReadCommands
{
    public static void AddTo(Command ostree)
    {
        ostree.Subcommands.Add(Refs());
        ostree.Subcommands.Add(Log());
        ostree.Subcommands.Add(Ls());
        ostree.Subcommands.Add(Fsck());
    }

    private static Option<string> RepoOption() => new("--repo") { Description = "The OSTree repository (any mode: bare, bare-user, bare-user-only, archive)", Required = true };

    private static Argument<string> RefArgument() => new("REF") { Description = "A ref (e.g. fedora/x86_64/stable, or REMOTE:REF) or a full commit checksum" };

    private static Command Refs()
    {
        var cmd = new Command("refs", "List the repository's refs, one 'REF CHECKSUM' line each (remote refs as REMOTE:REF)\n\nExample:\n  treechunk ostree refs --repo ./repo");
        var repo = RepoOption();
        var json = GlobalOptions.Json();
        cmd.Options.Add(repo);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var r = OstreeRepo.Open(p.GetValue(repo)!);
            var refs = r.ListRefs();
            Run.Log($"{r.Path} ({OstreeRepo.ModeName(r.Mode)}): {refs.Count} ref{(refs.Count == 1 ? "" : "s")}");
            if (p.GetValue(json))
            {
                Run.PrintJson(new JsonArray(refs.Select(r => (JsonNode)new JsonObject { ["ref"] = r.Key, ["checksum"] = r.Value }).ToArray()));
                return ExitCodes.Ok;
            }
            foreach (var (name, checksum) in refs) Console.WriteLine($"{name} {checksum}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Log()
    {
        var cmd = new Command("log", "Show a commit and its parents that are in the repository: checksum, date (UTC), version, subject, body\n\nExample:\n  treechunk ostree log --repo ./repo fedora/x86_64/stable");
        var repo = RepoOption();
        var rev = RefArgument();
        var json = GlobalOptions.Json();
        cmd.Options.Add(repo);
        cmd.Arguments.Add(rev);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var r = OstreeRepo.Open(p.GetValue(repo)!);
            var (commits, truncated) = r.History(p.GetValue(rev)!);
            Run.Log($"{r.Path}: {commits.Count} commit{(commits.Count == 1 ? "" : "s")} in the history of {p.GetValue(rev)}");
            if (p.GetValue(json))
            {
                Run.PrintJson(new JsonArray(commits.Select(x => (JsonNode)new JsonObject
                {
                    ["checksum"] = x.Checksum,
                    ["parent"] = x.Commit.Parent,
                    ["parent_present"] = x.Commit.Parent != null && r.HasObject(x.Commit.Parent, ObjectType.Commit),
                    ["subject"] = x.Commit.Subject,
                    ["body"] = x.Commit.Body,
                    ["timestamp"] = Date(x.Commit.Timestamp),
                    ["timestamp_unix"] = x.Commit.Timestamp,
                    ["version"] = x.Commit.MetadataString("version"),
                    ["root_tree"] = x.Commit.RootTree,
                    ["root_meta"] = x.Commit.RootMeta,
                    ["metadata"] = MetadataJson(x.Commit.Metadata),
                }).ToArray()));
                return ExitCodes.Ok;
            }
            foreach (var (checksum, commit) in commits)
            {
                Console.WriteLine($"commit {checksum}");
                if (commit.Parent != null) Console.WriteLine($"Parent:  {commit.Parent}");
                Console.WriteLine($"Date:    {Date(commit.Timestamp)}");
                if (commit.MetadataString("version") is { } version) Console.WriteLine($"Version: {version}");
                Console.WriteLine();
                if (commit.Subject.Length > 0) Console.WriteLine(Indent(commit.Subject));
                if (commit.Body.Length > 0)
                {
                    Console.WriteLine();
                    Console.WriteLine(Indent(commit.Body));
                }
                Console.WriteLine();
            }
            if (truncated) Console.WriteLine("<< History beyond this commit is not in the repository >>");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Ls()
    {
        var cmd = new Command("ls", """
            List a path of a commit like 'ostree ls -C': type and octal mode, uid, gid, size, checksum
            (directories: dirtree and dirmeta), path, and '-> TARGET' for symlinks.

            Examples:
              treechunk ostree ls --repo ./repo fedora/x86_64/stable /usr/bin
              treechunk ostree ls --repo ./repo fedora/x86_64/stable -R --json
            """);
        var repo = RepoOption();
        var rev = RefArgument();
        var path = new Argument<string>("PATH") { Description = "Path inside the commit (default /)", Arity = ArgumentArity.ZeroOrOne };
        var recursive = new Option<bool>("--recursive", "-R") { Description = "List directories recursively" };
        var json = GlobalOptions.Json();
        cmd.Options.Add(repo);
        cmd.Arguments.Add(rev);
        cmd.Arguments.Add(path);
        cmd.Options.Add(recursive);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            using var tree = CommitTree.Open(OstreeRepo.Open(p.GetValue(repo)!), p.GetValue(rev)!);
            Run.Log($"{tree.Description}: {tree.Entries.Count} entries");
            var wanted = TreePaths.Normalize(p.GetValue(path) ?? "/")
                         ?? throw new TreechunkException($"invalid path '{p.GetValue(path)}'");
            bool isDir = wanted.Length == 0 || tree.Find(wanted)?.Type == EntryType.Directory;
            if (!isDir && tree.Find(wanted) == null)
                throw new TreechunkException($"no such path /{wanted} in commit {tree.CommitChecksum}");
            var rows = new List<Row>();
            if (wanted.Length == 0)
            {
                var (t, m) = tree.DirChecksums("");
                rows.Add(new Row("", 'd', tree.RootMeta.Mode & 0xFFF, tree.RootMeta.Uid, tree.RootMeta.Gid, 0, t, m, null, tree.RootMeta.Xattrs));
            }
            else rows.Add(RowOf(tree, tree.Find(wanted)!));
            if (isDir)
            {
                var prefix = wanted.Length == 0 ? "" : wanted + "/";
                bool deep = p.GetValue(recursive);
                foreach (var e in tree.Entries)
                {
                    if (!e.Path.StartsWith(prefix, StringComparison.Ordinal) || e.Path.Length == prefix.Length) continue;
                    if (!deep && e.Path.IndexOf('/', prefix.Length) >= 0) continue;
                    rows.Add(RowOf(tree, e));
                }
            }
            if (p.GetValue(json))
            {
                Run.PrintJson(new JsonArray(rows.Select(r => (JsonNode)new JsonObject
                {
                    ["path"] = "/" + r.Path,
                    ["type"] = r.Type switch { 'd' => "directory", 'l' => "symlink", _ => "regular" },
                    ["mode"] = Octal(r.Mode),
                    ["uid"] = r.Uid,
                    ["gid"] = r.Gid,
                    ["size"] = r.Size,
                    ["checksum"] = r.Checksum,
                    ["meta_checksum"] = r.MetaChecksum,
                    ["target"] = r.Target,
                    ["xattrs"] = new JsonObject(r.Xattrs.Select(x => KeyValuePair.Create(x.Key, (JsonNode?)Convert.ToBase64String(x.Value)))),
                }).ToArray()));
                return ExitCodes.Ok;
            }
            foreach (var r in rows)
            {
                var checksums = r.MetaChecksum != null ? $"{r.Checksum} {r.MetaChecksum}" : r.Checksum;
                Console.WriteLine($"{r.Type}{Octal(r.Mode)} {r.Uid} {r.Gid} {r.Size,6} {checksums} /{r.Path}{(r.Target != null ? " -> " + r.Target : "")}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private sealed record Row(string Path, char Type, uint Mode, uint Uid, uint Gid, long Size, string Checksum, string? MetaChecksum, string? Target,
        IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs);

    private static Row RowOf(CommitTree tree, TreeEntry e)
    {
        if (e.Type == EntryType.Directory)
        {
            var (t, m) = tree.DirChecksums(e.Path);
            return new Row(e.Path, 'd', (uint)e.Mode, (uint)e.Uid, (uint)e.Gid, 0, t, m, null, e.Xattrs);
        }
        return new Row(e.Path, e.Type == EntryType.Symlink ? 'l' : '-', (uint)e.Mode, (uint)e.Uid, (uint)e.Gid, e.Size,
            tree.ContentChecksum(e), null, e.LinkTarget, e.Xattrs);
    }

    private static Command Fsck()
    {
        var cmd = new Command("fsck", """
            Check every object reachable from REF (default: from every ref), parents included when
            present: that it exists and that it hashes to its name, file content included. Prints
            each missing or corrupt object on its own line and exits 1 if there is any.

            Example:
              treechunk ostree fsck --repo ./repo fedora/x86_64/stable
            """);
        var repo = RepoOption();
        var rev = new Argument<string?>("REF") { Description = "Check only what this ref or commit reaches", Arity = ArgumentArity.ZeroOrOne };
        var json = GlobalOptions.Json();
        cmd.Options.Add(repo);
        cmd.Arguments.Add(rev);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var r = OstreeRepo.Open(p.GetValue(repo)!);
            bool asJson = p.GetValue(json), verbose = p.GetValue(GlobalOptions.Verbose);
            var report = OstreeFsck.Check(r, p.GetValue(rev), verbose ? m => Console.Error.WriteLine(m) : null);
            if (asJson)
            {
                Run.PrintJson(new JsonObject
                {
                    ["ok"] = report.Problems.Count == 0,
                    ["commits"] = report.Commits,
                    ["objects"] = report.Objects,
                    ["problems"] = new JsonArray(report.Problems.Select(x => (JsonNode)new JsonObject
                    {
                        ["problem"] = x.Problem == ObjectProblem.Missing ? "missing" : "corrupt",
                        ["type"] = x.TypeName,
                        ["checksum"] = x.Checksum,
                        ["path"] = x.Path != null ? "/" + x.Path : null,
                        ["detail"] = x.Detail,
                    }).ToArray()),
                });
            }
            else
            {
                foreach (var x in report.Problems) Console.WriteLine(x.ToString());
            }
            if (report.Problems.Count > 0)
                throw new TreechunkException($"{report.Problems.Count} missing or corrupt object{(report.Problems.Count == 1 ? "" : "s")} in {r.Path}", ExitCodes.VerificationFailed);
            if (!asJson) Console.WriteLine($"ok: {report.Objects} objects in {report.Commits} commit{(report.Commits == 1 ? "" : "s")} verified");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static string Octal(uint mode) => "0" + Convert.ToString(mode & 0xFFF, 8).PadLeft(4, '0');

    private static string Date(ulong unix) =>
        DateTimeOffset.FromUnixTimeSeconds((long)Math.Min(unix, 253402300799UL)).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Indent(string text) => string.Join('\n', text.Split('\n').Select(l => "    " + l));

    private static JsonObject MetadataJson(IReadOnlyList<KeyValuePair<string, Variant>> metadata)
    {
        var o = new JsonObject();
        foreach (var (key, v) in metadata) o[key] = VariantJson(v);
        return o;
    }

    /// <summary>Scalars as JSON values, anything else in GVariant text form.</summary>
    private static JsonNode? VariantJson(Variant v) => v.Type.Kind switch
    {
        's' or 'o' or 'g' => (string)v.Value,
        'b' => (bool)v.Value,
        'y' => (byte)v.Value,
        'n' => (short)v.Value,
        'q' => (ushort)v.Value,
        'i' or 'h' => (int)v.Value,
        'u' => (uint)v.Value,
        'x' => (long)v.Value,
        't' => (ulong)v.Value,
        'v' => VariantJson((Variant)v.Value),
        _ => GVariant.Print(v.Type, v.Value),
    };
}
