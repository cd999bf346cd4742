// gRPC API (docs/grpc.md): lstm_trainer.v1.LstmTrainer + grpc.health.v1.Health + server reflection.
export { startGrpcServer, type GrpcServer, type GrpcServerOptions } from './server.js';
export { PACKAGE, SERVICE_NAME, protoFilePath, protoRoot, packageDefinition, LOADER_OPTIONS } from './proto.js';
export { ERRORS_TRAILER, STATUS_DETAILS_TRAILER } from './errors.js';
export { UNAUTHENTICATED_MESSAGE } from './auth.js';
