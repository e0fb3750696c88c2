using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Treechunk.Ostree;
using Treechunk.Trees;

namespace Treechunk.Cli.Commands;

/// <summary>ostree init, commit.</summary>
public static class OstreeWriteCommands
{
    public static void AddTo(Command ostree)
    {
        ostree.Subcommands.Add(Init());
        ostree.Subcommands.Add(Commit());
    }

    private static Option<string> RepoOption() => new("--repo") { Description = "Path of the OSTree repository", Required = true };

    private static Command Init()
    {
        var cmd = new Command("init", """
            Create an OSTree repository, as `ostree init` does (same config and layout).

            An existing repository of the same mode is left as it is; a non-empty directory that is
            not a repository is refused.

            Examples:
              treechunk ostree init --repo ./repo --mode archive
              treechunk ostree init --repo ./repo-user --mode bare-user
            """);
        var repo = RepoOption();
        var mode = new Option<string>("--mode") { Description = "archive (compressed, for serving) | bare-user (plain files, metadata in xattrs) | bare (real owners and modes; needs root)", DefaultValueFactory = _ => "bare" };
        cmd.Options.Add(repo);
        cmd.Options.Add(mode);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var modeText = p.GetValue(mode)!;
            var parsed = OstreeRepo.ParseMode(modeText) is { } m && m != RepoMode.BareUserOnly ? m
                : throw new TreechunkException($"--mode '{modeText}': expected archive, bare-user or bare");
            var created = OstreeRepo.Init(p.GetValue(repo)!, parsed);
            Run.Log($"{created.Path}: {OstreeRepo.ModeName(created.Mode)} repository");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Commit()
    {
        var cmd = new Command("commit", """
            Commit a directory to an OSTree repository and print the commit checksum.

            The objects and checksums are the ones `ostree commit` writes for the same tree, subject,
            body, timestamp and metadata (including the ostree.ref-binding that --branch adds). The
            parent is the branch's current commit. Without --timestamp the commit time is
            SOURCE_DATE_EPOCH when set, else now.

            Examples:
              treechunk ostree commit --repo ./repo --branch os/x86_64/stable --subject "Release 42" ./rootfs
              treechunk ostree commit --repo ./repo --branch main --timestamp 2024-01-01T00:00:00Z --add-metadata-string version=42 --tree=dir=./rootfs --json
            """);
        var repo = RepoOption();
        var branch = new Option<string>("--branch", "-b") { Description = "Branch (ref) to commit to", Required = true };
        var subject = new Option<string?>("--subject", "-s") { Description = "One-line subject" };
        var body = new Option<string?>("--body", "-m") { Description = "Full description" };
        var timestamp = new Option<string?>("--timestamp") { Description = "Commit time: Unix seconds (optionally @SECONDS) or ISO 8601 (default: SOURCE_DATE_EPOCH, else now)" };
        var metadata = new Option<string[]>("--add-metadata-string") { Description = "Add KEY=VALUE to the commit metadata (repeatable; kept in the order given)" };
        var skipSpecial = new Option<bool>("--skip-special-files") { Description = "Leave out device nodes and fifos with a warning (OSTree cannot store them) instead of failing" };
        var treeOption = new Option<string?>("--tree") { Description = "The tree to commit, as dir=PATH (same as giving PATH)" };
        var dir = new Argument<string?>("DIR") { Description = "Directory to commit", Arity = ArgumentArity.ZeroOrOne };
        var json = GlobalOptions.Json();
        foreach (var o in new Option[] { repo, branch, subject, body, timestamp, metadata, skipSpecial, treeOption, json }) cmd.Options.Add(o);
        cmd.Arguments.Add(dir);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var root = TreeDirectory(p.GetValue(treeOption), p.GetValue(dir));
            var options = new CommitOptions
            {
                Ref = p.GetValue(branch)!,
                Subject = p.GetValue(subject) ?? "",
                Body = p.GetValue(body) ?? "",
                Timestamp = p.GetValue(timestamp) is { } t ? ParseTimestamp(t, "--timestamp") : SourceDateEpoch(),
                Metadata = ParseMetadata(p.GetValue(metadata)),
                SkipSpecialFiles = p.GetValue(skipSpecial),
                Warn = Run.Warn,
            };
            OstreeRepo.ValidateRefName(options.Ref!);
            var ostreeRepo = OstreeRepo.Open(p.GetValue(repo)!);
            using var tree = DirectoryTree.Open(root, Run.Warn);
            Run.Log($"committing {tree.Entries.Count} entries of {tree.Description} to {ostreeRepo.Path} ({OstreeRepo.ModeName(ostreeRepo.Mode)})");
            var result = CommitWriter.Write(ostreeRepo, tree, options);
            if (p.GetValue(json))
            {
                Run.PrintJson(new JsonObject
                {
                    ["commit"] = result.Checksum,
                    ["ref"] = options.Ref,
                    ["parent"] = result.Parent,
                    ["root_tree"] = result.RootTree,
                    ["root_meta"] = result.RootMeta,
                    ["timestamp"] = result.Timestamp,
                    ["content_objects"] = result.ContentObjects,
                    ["skipped"] = result.SkippedEntries,
                });
            }
            else Console.WriteLine(result.Checksum);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static string TreeDirectory(string? treeSpec, string? dir)
    {
        if (treeSpec != null && dir != null) throw new TreechunkException("give the tree either as --tree=dir=PATH or as DIR, not both");
        if (treeSpec == null) return dir ?? throw new TreechunkException("give the directory to commit (DIR or --tree=dir=PATH)");
        int eq = treeSpec.IndexOf('=');
        if (eq < 0) throw new TreechunkException($"--tree '{treeSpec}': expected dir=PATH");
        var kind = treeSpec[..eq];
        if (kind != "dir") throw new TreechunkException($"--tree '{treeSpec}': only dir=PATH is supported (not {kind}=)");
        return treeSpec[(eq + 1)..];
    }

    /// <summary>Keys keep the order given and repeats are kept, as `ostree commit` does: both are part of the checksum.</summary>
    private static List<KeyValuePair<string, Variant>> ParseMetadata(string[]? items)
    {
        var result = new List<KeyValuePair<string, Variant>>();
        foreach (var item in items ?? [])
        {
            int eq = item.IndexOf('=');
            if (eq <= 0) throw new TreechunkException($"--add-metadata-string '{item}': expected KEY=VALUE");
            result.Add(KeyValuePair.Create(item[..eq], new Variant("s", item[(eq + 1)..])));
        }
        return result;
    }

    public static ulong ParseTimestamp(string text, string what)
    {
        var digits = text.StartsWith('@') ? text[1..] : text;
        if (digits.Length > 0 && digits.All(char.IsAsciiDigit))
        {
            if (ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)) return seconds;
        }
        else if (!text.StartsWith('@') && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
                     DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var when) && when.ToUnixTimeSeconds() >= 0)
            return (ulong)when.ToUnixTimeSeconds();
        throw new TreechunkException($"{what} '{text}': expected Unix seconds (e.g. 1700000000 or @1700000000) or an ISO 8601 time (e.g. 2024-01-01T00:00:00Z)");
    }

    private static ulong? SourceDateEpoch() => ComposeCommands.SourceDateEpoch() is { } epoch ? (ulong)epoch : null;
}
