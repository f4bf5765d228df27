// An asc transform that names the SDK in the module's helios.sdk custom
// section, for `helios-wasm plugin inspect`:
//   asc op.ts --transform ./node_modules/@helios-wasm/sdk/transform.js ...
import { Transform } from "assemblyscript/transform";

export default class HeliosSDK extends Transform {
  afterCompile(module) {
    module.addCustomSection("helios.sdk", new TextEncoder().encode("assemblyscript/0.1.0"));
  }
}
