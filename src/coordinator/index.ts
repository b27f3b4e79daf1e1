export { Coordinator, type CoordinatedNode, type CoordinatorOptions } from './coordinator.ts'
export type { SelfState } from './decide.ts'
