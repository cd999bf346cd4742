"""A strict, independent gRPC client: Python grpcio + protobuf, no .proto files.

It learns the API from the server's reflection service alone (as grpcurl does): lists the services,
fetches the file descriptors of each, adds them to a fresh protobuf DescriptorPool (which validates
them as protoc would), builds the request messages from JSON and calls the methods.

  python3 strict_reflection_client.py ADDR [--metadata KEY=VALUE] STEP...

Steps (run in order, each printing one JSON line):
  list                              the services (reflection ListServices)
  describe                          every service's file resolves in a strict DescriptorPool; prints,
                                    per service, its file, methods, map entries and proto3 optionals
  call SERVICE/METHOD JSON          a unary call; prints the response as JSON
  stream SERVICE/METHOD JSON N      a server-streaming call; prints the first N messages (or all)
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format

from google.protobuf import message_factory


def message_class(desc):
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.24
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)

REFLECTION = "grpc.reflection.v1.ServerReflection"


def build_reflection_messages():
    """The reflection protocol's own messages, declared here (the client ships no .proto)."""
    f = descriptor_pb2.FileDescriptorProto(name="client_reflection_v1.proto", package="grpc.reflection.v1", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto

    def msg(name, fields, oneof=None):
        m = f.message_type.add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for fname, num, ftype, label, tname, in_oneof in fields:
            fd = m.field.add(name=fname, number=num, type=ftype, label=label)
            if tname:
                fd.type_name = tname
            if in_oneof:
                fd.oneof_index = 0

    O, R = T.LABEL_OPTIONAL, T.LABEL_REPEATED
    msg("ExtensionRequest", [("containing_type", 1, T.TYPE_STRING, O, None, False), ("extension_number", 2, T.TYPE_INT32, O, None, False)])
    msg("ServerReflectionRequest", [
        ("host", 1, T.TYPE_STRING, O, None, False),
        ("file_by_filename", 3, T.TYPE_STRING, O, None, True),
        ("file_containing_symbol", 4, T.TYPE_STRING, O, None, True),
        ("file_containing_extension", 5, T.TYPE_MESSAGE, O, ".grpc.reflection.v1.ExtensionRequest", True),
        ("all_extension_numbers_of_type", 6, T.TYPE_STRING, O, None, True),
        ("list_services", 7, T.TYPE_STRING, O, None, True),
    ], oneof="message_request")
    msg("FileDescriptorResponse", [("file_descriptor_proto", 1, T.TYPE_BYTES, R, None, False)])
    msg("ServiceResponse", [("name", 1, T.TYPE_STRING, O, None, False)])
    msg("ListServiceResponse", [("service", 1, T.TYPE_MESSAGE, R, ".grpc.reflection.v1.ServiceResponse", False)])
    msg("ErrorResponse", [("error_code", 1, T.TYPE_INT32, O, None, False), ("error_message", 2, T.TYPE_STRING, O, None, False)])
    msg("ServerReflectionResponse", [
        ("valid_host", 1, T.TYPE_STRING, O, None, False),
        ("original_request", 2, T.TYPE_MESSAGE, O, ".grpc.reflection.v1.ServerReflectionRequest", False),
        ("file_descriptor_response", 4, T.TYPE_MESSAGE, O, ".grpc.reflection.v1.FileDescriptorResponse", True),
        ("all_extension_numbers_response", 5, T.TYPE_MESSAGE, O, ".grpc.reflection.v1.FileDescriptorResponse", True),
        ("list_services_response", 6, T.TYPE_MESSAGE, O, ".grpc.reflection.v1.ListServiceResponse", True),
        ("error_response", 7, T.TYPE_MESSAGE, O, ".grpc.reflection.v1.ErrorResponse", True),
    ], oneof="message_response")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    get = lambda n: message_class(pool.FindMessageTypeByName("grpc.reflection.v1." + n))
    return get("ServerReflectionRequest"), get("ServerReflectionResponse")


class Reflection:
    def __init__(self, channel, metadata):
        self.Req, self.Res = build_reflection_messages()
        self.rpc = channel.stream_stream(
            f"/{REFLECTION}/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.Res.FromString,
        )
        self.metadata = metadata
        self.pool = descriptor_pool.DescriptorPool()  # strict: validates every file as protoc would
        self.added = set()
        self.files = {}  # name -> FileDescriptorProto as served

    def ask(self, **kw):
        res = next(iter(self.rpc(iter([self.Req(**kw)]), metadata=self.metadata, timeout=10)))
        if res.HasField("error_response"):
            raise RuntimeError(f"reflection error {res.error_response.error_code}: {res.error_response.error_message}")
        return res

    def services(self):
        return [s.name for s in self.ask(list_services="*").list_services_response.service]

    def add_files_for(self, symbol):
        res = self.ask(file_containing_symbol=symbol)
        files = {}
        for raw in res.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[fd.name] = fd
        # add dependencies before the files that import them
        def add(name):
            if name in self.added or name not in files:
                return
            for dep in files[name].dependency:
                add(dep)
            self.pool.Add(files[name])  # raises TypeError naming the file if the descriptor is invalid
            self.added.add(name)
            self.files[name] = files[name]
        for name in files:
            add(name)

    def method(self, full):
        service, name = full.rsplit("/", 1)
        self.add_files_for(service)
        sd = self.pool.FindServiceByName(service)
        md = sd.FindMethodByName(name)
        return md, message_class(md.input_type), message_class(md.output_type)


def walk(messages):
    for m in messages:
        yield m
        yield from walk(m.nested_type)


def to_json(m):
    return json.loads(json_format.MessageToJson(m, preserving_proto_field_name=False))


def main(argv):
    addr, steps = argv[0], argv[1:]
    metadata = []
    while steps and steps[0] == "--metadata":
        k, v = steps[1].split("=", 1)
        metadata.append((k, v))
        steps = steps[2:]
    channel = grpc.insecure_channel(addr)
    refl = Reflection(channel, metadata)
    i = 0
    while i < len(steps):
        step = steps[i]
        if step == "list":
            print(json.dumps({"services": refl.services()}), flush=True)
            i += 1
        elif step == "describe":
            out = {}
            for s in refl.services():
                refl.add_files_for(s)
                sd = refl.pool.FindServiceByName(s)
                fd = refl.files[sd.file.name]
                out[s] = {
                    "file": sd.file.name,
                    "dependencies": list(fd.dependency),
                    "methods": [m.name for m in sd.methods],
                    "mapEntries": sorted(n for m in walk(fd.message_type) for n in [x.name for x in m.nested_type if x.options.map_entry]),
                    "proto3Optional": sorted(f"{m.name}.{f.name}" for m in walk(fd.message_type) for f in m.field if f.proto3_optional),
                }
            print(json.dumps({"describe": out}), flush=True)
            i += 1
        elif step in ("call", "stream"):
            full, body = steps[i + 1], steps[i + 2]
            n = int(steps[i + 3]) if step == "stream" else 0
            md, Req, Res = refl.method(full)
            req = json_format.Parse(body, Req())
            path = f"/{md.containing_service.full_name}/{md.name}"
            try:
                if step == "call":
                    fn = channel.unary_unary(path, request_serializer=Req.SerializeToString, response_deserializer=Res.FromString)
                    print(json.dumps({"method": full, "response": to_json(fn(req, metadata=metadata, timeout=30))}), flush=True)
                else:
                    fn = channel.unary_stream(path, request_serializer=Req.SerializeToString, response_deserializer=Res.FromString)
                    got = []
                    call = fn(req, metadata=metadata, timeout=60)
                    for m in call:
                        got.append(to_json(m))
                        if n and len(got) >= n:
                            call.cancel()
                            break
                    print(json.dumps({"method": full, "responses": got}), flush=True)
            except grpc.RpcError as e:
                print(json.dumps({"method": full, "error": {"code": e.code().name, "details": e.details()}}), flush=True)
            i += 4 if step == "stream" else 3
        else:
            raise SystemExit(f"unknown step {step!r}")
    channel.close()


if __name__ == "__main__":
    main(sys.argv[1:])
