(* Checks Labctl_auth against the shared contract, service/testdata:
   vectors.tsv (format in service/testdata/README.md) and the users of
   store/. The Go handler runs the same vectors. *)

module A = Labctl_auth

(* Debian ships pbkdf 1.x (Cstruct); the unikernel adapts pbkdf 2.x. *)
let kdf ~password ~salt ~count ~dk_len =
  Cstruct.to_string
    (Pbkdf.pbkdf2 ~prf:`SHA256 ~password:(Cstruct.of_string password)
       ~salt:(Cstruct.of_string salt) ~count ~dk_len:(Int32.of_int dk_len))

(* --- finding and reading service/testdata *)

let read_file path =
  let ic = open_in_bin path in
  Fun.protect
    ~finally:(fun () -> close_in ic)
    (fun () -> really_input_string ic (in_channel_length ic))

(* dune runs the test inside _build; walk up to service/, the directory
   holding both testdata/ and unikernel/. LABCTL_SERVICE_TESTDATA
   overrides. *)
let testdata =
  lazy
    (match Sys.getenv_opt "LABCTL_SERVICE_TESTDATA" with
    | Some d -> d
    | None ->
        let rec up dir =
          let td = Filename.concat dir "testdata" in
          if
            Sys.file_exists (Filename.concat td "vectors.tsv")
            && Sys.file_exists (Filename.concat dir "unikernel")
          then td
          else
            let parent = Filename.dirname dir in
            if parent = dir then
              failwith "service/testdata/vectors.tsv not found above the test's directory"
            else up parent
        in
        up (Sys.getcwd ()))

let store_dir () = Filename.concat (Lazy.force testdata) "store"

let store_lookup name =
  let path = Filename.concat (store_dir ()) name in
  if Sys.file_exists path then Some (read_file path) else None

let store_credentials () =
  Sys.readdir (store_dir ())
  |> Array.to_list |> List.sort compare
  |> List.map (fun name ->
         match A.parse_credential (read_file (Filename.concat (store_dir ()) name)) with
         | Ok c -> (name, c)
         | Error e -> Alcotest.failf "store/%s: %s" name e)

let contains s sub =
  let n = String.length s and m = String.length sub in
  let rec at i = i + m <= n && (String.sub s i m = sub || at (i + 1)) in
  at 0

(* --- vectors.tsv *)

type vector = { name : string; meth : string; target : string; status : int; body : string }

(* {C*N}: the character C repeated N times, 1 <= N <= 1048576. *)
let expand_macros line_no s =
  let b = Buffer.create (String.length s) in
  let n = String.length s in
  let rec go i =
    if i >= n then Buffer.contents b
    else if s.[i] <> '{' then (
      Buffer.add_char b s.[i];
      go (i + 1))
    else
      match String.index_from_opt s i '}' with
      | Some j when j - i >= 4 && s.[i + 2] = '*' ->
          let digits = String.sub s (i + 3) (j - i - 3) in
          let count =
            if String.for_all (function '0' .. '9' -> true | _ -> false) digits
            then int_of_string_opt digits
            else None
          in
          (match count with
          | Some k when k >= 1 && k <= 1048576 -> Buffer.add_string b (String.make k s.[i + 1])
          | _ -> Alcotest.failf "vectors.tsv:%d: bad macro count %S" line_no digits);
          go (j + 1)
      | _ -> Alcotest.failf "vectors.tsv:%d: '{' outside a {C*N} macro" line_no
  in
  go 0

(* Body escapes: \n \t \\ ; any other backslash is an error. *)
let unescape_body line_no s =
  let b = Buffer.create (String.length s) in
  let n = String.length s in
  let rec go i =
    if i >= n then Buffer.contents b
    else if s.[i] <> '\\' then (
      Buffer.add_char b s.[i];
      go (i + 1))
    else if i + 1 >= n then Alcotest.failf "vectors.tsv:%d: trailing backslash" line_no
    else (
      (match s.[i + 1] with
      | 'n' -> Buffer.add_char b '\n'
      | 't' -> Buffer.add_char b '\t'
      | '\\' -> Buffer.add_char b '\\'
      | c -> Alcotest.failf "vectors.tsv:%d: unknown escape \\%c" line_no c);
      go (i + 2))
  in
  go 0

let valid_vector_name s =
  s <> ""
  && String.for_all
       (function 'a' .. 'z' | 'A' .. 'Z' | '0' .. '9' | '.' | '_' | '-' -> true | _ -> false)
       s

let parse_vectors text =
  let lines = String.split_on_char '\n' text in
  let seen = Hashtbl.create 64 in
  List.concat
    (List.mapi
       (fun i line ->
         let line_no = i + 1 in
         if line = "" || line.[0] = '#' then []
         else (
           if String.contains line '\r' then Alcotest.failf "vectors.tsv:%d: CR in line" line_no;
           match String.split_on_char '\t' line with
           | [ name; meth; target; status; body ] ->
               if not (valid_vector_name name) then
                 Alcotest.failf "vectors.tsv:%d: bad name %S" line_no name;
               if Hashtbl.mem seen name then
                 Alcotest.failf "vectors.tsv:%d: duplicate name %s" line_no name;
               Hashtbl.add seen name ();
               let status =
                 match int_of_string_opt status with
                 | Some s when String.length status = 3 && s >= 100 -> s
                 | _ -> Alcotest.failf "vectors.tsv:%d: bad status %S" line_no status
               in
               let target = expand_macros line_no target in
               String.iter
                 (fun c ->
                   if c < '!' || c > '~' then
                     Alcotest.failf "vectors.tsv:%d: target byte %C is not printable ASCII" line_no c)
                 target;
               [ { name; meth; target; status; body = unescape_body line_no body } ]
           | fields ->
               Alcotest.failf "vectors.tsv:%d: expected 5 TAB-separated fields, got %d" line_no
                 (List.length fields)))
       lines)

let vectors =
  lazy (parse_vectors (read_file (Filename.concat (Lazy.force testdata) "vectors.tsv")))

(* --- tests *)

let test_vectors () =
  let vs = Lazy.force vectors in
  (* A parser that silently dropped lines would make this pass vacuously. *)
  if List.length vs < 50 then Alcotest.failf "only %d vectors parsed" (List.length vs);
  let creds = List.map snd (store_credentials ()) in
  let t = A.create ~kdf ~cost:(A.cost_of creds) in
  let failures =
    List.filter_map
      (fun v ->
        let d = A.handle_sync t ~lookup:store_lookup ~meth:v.meth ~target:v.target in
        if d.status = v.status && d.body = v.body then None
        else
          Some
            (Printf.sprintf "%s: got %d %S, want %d %S" v.name d.status d.body v.status v.body))
      vs
  in
  if failures <> [] then
    Alcotest.failf "%d of %d vectors fail:\n%s" (List.length failures) (List.length vs)
      (String.concat "\n" failures)

let test_headers () =
  let t = A.create ~kdf ~cost:1000 in
  List.iter
    (fun v ->
      let d = A.handle_sync t ~lookup:store_lookup ~meth:v.meth ~target:v.target in
      let h k = List.assoc_opt k d.A.headers in
      Alcotest.(check (option string))
        (v.name ^ " content-type") (Some "text/plain; charset=utf-8") (h "content-type");
      Alcotest.(check (option string))
        (v.name ^ " allow")
        (if d.status = 405 then Some "GET, HEAD" else None)
        (h "allow"))
    (Lazy.force vectors)

(* Every request with a user and a password pays the same PBKDF2 work,
   whatever the outcome: the store's highest count. Others pay none. *)
let test_equal_cost () =
  let creds = store_credentials () in
  let cost = A.cost_of (List.map snd creds) in
  Alcotest.(check int) "fixture store cost" 2000 cost;
  let paid = ref 0 in
  let counting ~password ~salt ~count ~dk_len =
    paid := !paid + count;
    kdf ~password ~salt ~count ~dk_len
  in
  let t = A.create ~kdf:counting ~cost in
  List.iter
    (fun v ->
      paid := 0;
      let d = A.handle_sync t ~lookup:store_lookup ~meth:v.meth ~target:v.target in
      let want = match d.A.outcome with "ok" | "invalid" -> cost | _ -> 0 in
      if !paid <> want then
        Alcotest.failf "%s (%s): paid %d iterations, want %d" v.name d.A.outcome !paid want)
    (Lazy.force vectors);
  (* A malformed stored credential never matches and costs the same. *)
  paid := 0;
  let d =
    A.handle_sync t
      ~lookup:(fun _ -> Some "pbkdf2-sha256$1000$not base64$")
      ~meth:"GET" ~target:"/?user=john&password=password"
  in
  Alcotest.(check int) "malformed credential status" 401 d.A.status;
  Alcotest.(check int) "malformed credential cost" cost !paid

(* RFC 7914 section 11, PBKDF2-HMAC-SHA256 test vector: checks the kdf the
   tests inject, so a wrong adapter cannot make the vectors pass. *)
let test_pbkdf2_vector () =
  let hex s = String.concat "" (List.init (String.length s) (fun i -> Printf.sprintf "%02x" (Char.code s.[i]))) in
  Alcotest.(check string)
    "P=passwd S=salt c=1 dkLen=64"
    "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
    (hex (kdf ~password:"passwd" ~salt:"salt" ~count:1 ~dk_len:64))

let test_base64 () =
  let cases =
    [
      ("", Some "");
      ("Zg==", Some "f");
      ("Zm8=", Some "fo");
      ("Zm9v", Some "foo");
      ("Zm9vYg==", Some "foob");
      ("Zm9vYmE=", Some "fooba");
      ("Zm9vYmFy", Some "foobar");
      ("+/+/", Some "\xfb\xff\xbf");
      (* Rejected: bad length, URL alphabet, stray or missing padding,
         non-canonical trailing bits, whitespace. *)
      ("Zg=", None);
      ("Zg", None);
      ("-_-_", None);
      ("Z===", None);
      ("Zg=a", None);
      ("=Zg=", None);
      ("Zh==", None);
      ("Zm9=", None);
      ("Zm9v\n", None);
    ]
  in
  List.iter
    (fun (s, want) -> Alcotest.(check (option string)) (Printf.sprintf "%S" s) want (A.base64_decode s))
    cases

let test_unescape () =
  let cases =
    [
      ("a+b", Some "a b");
      ("%41%6a", Some "Aj");
      ("%2B", Some "+");
      ("%00", Some "\000");
      ("%", None);
      ("%4", None);
      ("%zz", None);
      ("a%G0", None);
      ("", Some "");
    ]
  in
  List.iter
    (fun (s, want) -> Alcotest.(check (option string)) (Printf.sprintf "%S" s) want (A.unescape s))
    cases;
  Alcotest.(check string) "no query" "" (A.query_of_target "/x");
  Alcotest.(check string) "asterisk" "" (A.query_of_target "*");
  Alcotest.(check string) "first ?" "a=1?b" (A.query_of_target "/p?a=1?b")

let test_credentials () =
  let creds = store_credentials () in
  Alcotest.(check (list string)) "store users" [ "alice"; "bob.smith_2-dev"; "carol"; "john" ]
    (List.map fst creds);
  let john = List.assoc "john" creds in
  Alcotest.(check bool) "john/password" true (A.verify ~kdf john "password");
  Alcotest.(check bool) "john/Password" false (A.verify ~kdf john "Password");
  Alcotest.(check bool) "john/password\\000" false (A.verify ~kdf john "password\000");
  let good = read_file (Filename.concat (store_dir ()) "john") in
  let parts = String.split_on_char '$' good in
  let with_part i v = String.concat "$" (List.mapi (fun j p -> if j = i then v else p) parts) in
  let bad =
    [
      ("scheme", with_part 0 "pbkdf2-sha1", "expected scheme");
      ("leading zero", with_part 1 "01000", "leading zero");
      ("sign", with_part 1 "+1000", "leading zero");
      ("too few iterations", with_part 1 "999", "expected iterations in");
      ("too many iterations", with_part 1 "10000001", "expected iterations in");
      ("short salt", with_part 2 "AAAAAA==", "salt of 8-64 bytes");
      ("url base64", with_part 2 "zmLqiApVlZuEf7y9fHIdRQ-_", "canonical padded base64");
      ("short key", with_part 3 "AAAAAAAAAAAAAAAAAAAA", "key of 16-64 bytes");
      ("fields", "pbkdf2-sha256$1000$abc", "expected pbkdf2-sha256$");
      ("crlf", good ^ "\r\n", "line break");
      ("two newlines", good ^ "\n\n", "line break");
      ("huge", String.make 300 'a', "at most");
    ]
  in
  List.iter
    (fun (what, s, want) ->
      match A.parse_credential s with
      | Ok _ -> Alcotest.failf "%s: accepted %S" what s
      | Error e ->
          if not (contains e want) then Alcotest.failf "%s: error %S lacks %S" what e want)
    bad;
  match A.parse_credential (good ^ "\n") with
  | Ok c -> Alcotest.(check int) "one trailing newline is fine" 1000 c.A.iterations
  | Error e -> Alcotest.fail e

let test_names () =
  List.iter
    (fun (s, want) -> Alcotest.(check bool) (Printf.sprintf "%S" s) want (A.valid_name s))
    [
      ("john", true); ("bob.smith_2-dev", true); (String.make 64 'a', true);
      ("", false); (".john", false); ("..", false); ("a/b", false); ("a b", false);
      (String.make 65 'a', false); ("j\195\182hn", false); ("john\000", false);
    ];
  Alcotest.(check string) "log_safe control" "a?b" (A.log_safe "a\nb");
  Alcotest.(check string) "log_safe long" (String.make 64 'x' ^ "...(100 bytes)")
    (A.log_safe (String.make 100 'x'))

let test_lookup_step () =
  (* The unikernel reads the store between the two halves; only valid
     names are ever looked up. *)
  let t = A.create ~kdf ~cost:1000 in
  (match A.handle t ~meth:"GET" ~target:"/?user=john&password=x" with
  | A.Lookup ("john", _) -> ()
  | _ -> Alcotest.fail "valid user: expected a lookup of john");
  match A.handle t ~meth:"GET" ~target:"/?user=..%2Fjohn&password=x" with
  | A.Done d -> Alcotest.(check int) "invalid name answered without lookup" 401 d.A.status
  | A.Lookup (u, _) -> Alcotest.failf "looked up invalid name %S" u

let () =
  Alcotest.run "labctl_auth"
    [
      ( "contract",
        [
          Alcotest.test_case "service/testdata/vectors.tsv" `Quick test_vectors;
          Alcotest.test_case "headers" `Quick test_headers;
          Alcotest.test_case "equal cost" `Quick test_equal_cost;
          Alcotest.test_case "lookup step" `Quick test_lookup_step;
        ] );
      ( "parts",
        [
          Alcotest.test_case "pbkdf2 vector" `Quick test_pbkdf2_vector;
          Alcotest.test_case "base64" `Quick test_base64;
          Alcotest.test_case "unescape" `Quick test_unescape;
          Alcotest.test_case "credentials" `Quick test_credentials;
          Alcotest.test_case "names" `Quick test_names;
        ] );
    ]
